//! "Sign in with …": the console's OpenID Connect login, when `[auth.jwt]` names a
//! `console_client_id`. Authorization code with PKCE (RFC 7636, S256) as a public client
//! (OAuth 2.1 §4.1), the access token asked for this server's `audience` (RFC 8707
//! `resource`), then checked by the same [`JwtVerifier`](crate::jwt::JwtVerifier) as a
//! bearer token on `/mcp`: the session holds that access token and ends when it expires.
//!
//! 1. `GET /console/login/oidc?next=…`: a fresh `state` and code verifier, kept here for
//!    ten minutes and bound to the browser by the cookie `rampart_oidc` (`SameSite=Lax`:
//!    the authorization server's redirect back is a cross-site navigation); 303 to the
//!    authorization endpoint.
//! 2. `GET /console/login/oidc/callback?code=…&state=…`: the `state` must be the cookie's
//!    and still pending (used once); the code is exchanged at the token endpoint with the
//!    verifier; the access token must authenticate. Then a console session opens as for
//!    a token sign-in. The answer is a page that moves on by itself (a `SameSite=Strict`
//!    cookie is not sent on a redirect chain that began on another site).
//!
//! Endpoints come from the configuration or the issuer's metadata (RFC 8414, else OpenID
//! Connect discovery), fetched once.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{Query, Request, State},
    response::{Html, IntoResponse, Redirect, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use maud::{DOCTYPE, html};
use rampart_config::JwtConfig;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use super::{Console, layout, session::random_token};

/// The cookie binding a login in progress to the browser that started it.
const COOKIE: &str = "rampart_oidc";
/// How long a login may take at the authorization server.
const PENDING: Duration = Duration::from_secs(10 * 60);
/// At most this many logins in progress at once (the oldest is dropped).
const MAX_PENDING: usize = 1_000;
/// Where the authorization server sends the browser back.
pub(crate) const CALLBACK: &str = "/console/login/oidc/callback";

/// A login in progress.
struct Pending {
    verifier: String,
    redirect_uri: String,
    next: Option<String>,
    started: Instant,
}

#[derive(Clone, Debug)]
struct Endpoints {
    authorization: String,
    token: String,
}

/// The console's OpenID Connect login.
pub(crate) struct Oidc {
    config: JwtConfig,
    client_id: String,
    endpoints: OnceCell<Endpoints>,
    pending: Mutex<HashMap<String, Pending>>,
    http: reqwest::Client,
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 §4.2).
fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `https`, or `http` on a loopback host only (as for `jwks_url`).
fn acceptable(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://127.") || url.starts_with("http://localhost")
}

impl Oidc {
    /// The login of `config`, when it names a console client.
    pub(crate) fn new(config: &JwtConfig) -> Option<Self> {
        let client_id = config.console_client_id.clone()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .ok()?;
        Some(Self { config: config.clone(), client_id, endpoints: OnceCell::new(), pending: Mutex::default(), http })
    }

    /// The issuer, for the button.
    pub(crate) fn issuer(&self) -> &str {
        &self.config.issuer
    }

    async fn endpoints(&self) -> Result<Endpoints, String> {
        self.endpoints.get_or_try_init(|| self.discover()).await.cloned()
    }

    async fn discover(&self) -> Result<Endpoints, String> {
        if let (Some(authorization), Some(token)) = (&self.config.authorization_endpoint, &self.config.token_endpoint) {
            return Ok(Endpoints { authorization: authorization.clone(), token: token.clone() });
        }
        let issuer = self.config.issuer.trim_end_matches('/');
        let mut last = String::new();
        for suffix in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
            let url = format!("{issuer}{suffix}");
            let metadata = match self.http.get(&url).send().await {
                Ok(response) if response.status().is_success() => response.json::<Value>().await.ok(),
                Ok(response) => {
                    last = format!("{url}: HTTP {}", response.status().as_u16());
                    None
                }
                Err(error) => {
                    last = format!("{url}: {error}");
                    None
                }
            };
            let Some(metadata) = metadata else { continue };
            let field = |name: &str, configured: &Option<String>| {
                configured.clone().or_else(|| metadata[name].as_str().map(str::to_owned))
            };
            if let (Some(authorization), Some(token)) = (
                field("authorization_endpoint", &self.config.authorization_endpoint),
                field("token_endpoint", &self.config.token_endpoint),
            ) {
                return Ok(Endpoints { authorization, token });
            }
            last = format!("{url}: no authorization_endpoint/token_endpoint");
        }
        Err(format!("the authorization server's metadata could not be read ({last})"))
    }

    fn remember(&self, state: String, pending: Pending) {
        let mut map = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, p| p.started.elapsed() < PENDING);
        if map.len() >= MAX_PENDING
            && let Some(oldest) = map.iter().min_by_key(|(_, p)| p.started).map(|(s, _)| s.clone())
        {
            map.remove(&oldest);
        }
        map.insert(state, pending);
    }

    fn take(&self, state: &str) -> Option<Pending> {
        let mut map = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(state).filter(|p| p.started.elapsed() < PENDING)
    }

    /// Exchanges `code` for an access token (RFC 6749 §4.1.3 with the PKCE verifier).
    async fn exchange(&self, token_endpoint: &str, code: &str, pending: &Pending) -> Result<String, String> {
        let fields = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("client_id", self.client_id.as_str()),
            ("code_verifier", pending.verifier.as_str()),
            ("resource", self.config.audience.as_str()),
        ];
        let form = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let response = self
            .http
            .post(token_endpoint)
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|error| format!("the token endpoint did not answer: {error}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            let reason = body["error_description"].as_str().or(body["error"].as_str()).unwrap_or("no reason given");
            return Err(format!("the token endpoint refused the code (HTTP {}): {reason}", status.as_u16()));
        }
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "the token endpoint returned no access_token".into())
    }
}

/// The login-binding cookie, `SameSite=Lax`: the authorization server's redirect back is a
/// cross-site navigation; set for the login's lifetime, or removed.
fn oidc_cookie(console: &Console, value: &str, remove: bool) -> HeaderValue {
    let age = if remove { 0 } else { i64::try_from(PENDING.as_secs()).unwrap_or(i64::MAX) };
    let binding = (COOKIE, "/console/login/oidc", cookie::SameSite::Lax);
    console.set_cookie(binding, value, Some(cookie::time::Duration::seconds(age)))
}

#[derive(Deserialize, Default)]
pub(crate) struct Start {
    next: Option<String>,
}

/// `GET /console/login/oidc`: off to the authorization server.
pub(crate) async fn start(
    State(console): State<Arc<Console>>,
    Query(start): Query<Start>,
    headers: HeaderMap,
) -> Response {
    let Some(oidc) = &console.oidc else { return layout::error_page(StatusCode::NOT_FOUND, "No such page.") };
    let failed =
        |message: String| layout::sign_in(StatusCode::BAD_GATEWAY, None, Some(&message), console.sign_in_with());
    let endpoints = match oidc.endpoints().await {
        Ok(endpoints) => endpoints,
        Err(message) => return failed(format!("Sign-in with {} is unavailable: {message}.", oidc.issuer())),
    };
    if !acceptable(&endpoints.authorization) {
        return failed(format!("The authorization endpoint {} is not https.", endpoints.authorization));
    }
    let Some(origin) = console.expected_origin(&headers) else {
        return layout::error_page(StatusCode::BAD_REQUEST, "This request has no Host.");
    };
    let redirect_uri = format!("{origin}{CALLBACK}");
    let (state, verifier) = (random_token(), random_token());
    let scope = std::iter::once("openid")
        .chain(oidc.config.required_scopes.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", &scope)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge(&verifier))
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", &oidc.config.audience)
        .finish();
    let separator = if endpoints.authorization.contains('?') { '&' } else { '?' };
    let target = format!("{}{separator}{query}", endpoints.authorization);
    let next = super::safe_next(start.next.as_deref()).map(str::to_owned);
    let cookie = oidc_cookie(&console, &state, false);
    oidc.remember(state, Pending { verifier, redirect_uri, next, started: Instant::now() });
    let mut response = Redirect::to(&target).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

#[derive(Deserialize, Default)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /console/login/oidc/callback`: back from the authorization server.
pub(crate) async fn callback(
    State(console): State<Arc<Console>>,
    Query(back): Query<Callback>,
    request: Request,
) -> Response {
    let Some(oidc) = &console.oidc else { return layout::error_page(StatusCode::NOT_FOUND, "No such page.") };
    let remote = super::remote(&request);
    let refuse = |status: StatusCode, message: &str| {
        let mut response = layout::sign_in(status, None, Some(message), console.sign_in_with());
        response.headers_mut().insert(header::SET_COOKIE, oidc_cookie(&console, "", true));
        response
    };
    if let Some(error) = &back.error {
        let reason = back.error_description.as_deref().unwrap_or(error);
        return refuse(StatusCode::UNAUTHORIZED, &format!("The authorization server did not sign you in: {reason}"));
    }
    let (Some(code), Some(state)) = (back.code.as_deref(), back.state.as_deref()) else {
        return refuse(StatusCode::BAD_REQUEST, "The authorization server's answer had no code or state.");
    };
    // The state must be the one this browser started with, and still pending: a login
    // started elsewhere (login CSRF) or replayed is refused.
    let bound = super::cookie_value(request.headers(), COOKIE)
        .is_some_and(|cookie| bool::from(cookie.as_bytes().ct_eq(state.as_bytes())));
    let pending = if bound { oidc.take(state) } else { None };
    let Some(pending) = pending else {
        tracing::warn!(remote = ?remote, "console OpenID Connect callback with an unknown or foreign state");
        console
            .guard
            .record_auth_failure(rampart_core::Transport::Console, remote.map(|r| r.to_string()), "invalid", CALLBACK)
            .await;
        return refuse(StatusCode::BAD_REQUEST, "This sign-in was not started here, or has expired; start again.");
    };
    let endpoints = match oidc.endpoints().await {
        Ok(endpoints) => endpoints,
        Err(message) => return refuse(StatusCode::BAD_GATEWAY, &message),
    };
    let token = match oidc.exchange(&endpoints.token, code, &pending).await {
        Ok(token) => token,
        Err(message) => {
            tracing::warn!(remote = ?remote, %message, "console OpenID Connect code exchange failed");
            console
                .guard
                .record_auth_failure(
                    rampart_core::Transport::Console,
                    remote.map(|r| r.to_string()),
                    "invalid",
                    CALLBACK,
                )
                .await;
            return refuse(StatusCode::UNAUTHORIZED, &format!("Sign-in failed: {message}."));
        }
    };
    let mut response = match console.open_session(format!("Bearer {token}"), remote, pending.next.as_deref()).await {
        Ok((cookie, target)) => {
            let markup = html! {
                (DOCTYPE)
                html lang="en" {
                    head {
                        meta charset="utf-8";
                        meta http-equiv="refresh" content={ "0;url=" (target) };
                        title { "Signed in · Rampart console" }
                        link rel="stylesheet" href="/console/assets/console.css";
                    }
                    body.signin { main #main { h1 { "Signed in" } p { a #continue href=(target) { "Continue to the console" } } } }
                }
            };
            let mut response = Html(markup.into_string()).into_response();
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        Err(refused) => refused,
    };
    response.headers_mut().append(header::SET_COOKIE, oidc_cookie(&console, "", true));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
