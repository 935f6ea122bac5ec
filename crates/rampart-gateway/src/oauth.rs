//! `[upstreams.NAME.oauth]`: an access token for an upstream that requires one, obtained
//! by Rampart itself with the OAuth 2.1 client credentials grant (RFC 6749 §4.4, the MCP
//! "ext-auth" client-credentials extension), cached until shortly before it expires.
//! The token is Rampart's, never a caller's: callers' credentials are never forwarded.

use std::time::{Duration, Instant};

use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl, basic::BasicClient};
use serde::{Deserialize, Serialize};

/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(60);
/// Lifetime assumed when the server gives none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Longest wait for the token endpoint.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(15);

/// `[upstreams.NAME.oauth]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// The authorization server's token endpoint, e.g.
    /// `https://auth.example.com/oauth/token`.
    pub token_url: String,
    /// The client id Rampart was registered with.
    pub client_id: String,
    /// Its secret (use `${VAR}` to keep it out of `rampart.toml`).
    pub client_secret: String,
    /// Scopes to ask for, space-separated, e.g. `"mcp:tools"`.
    pub scope: Option<String>,
    /// The upstream's resource identifier (RFC 8707 `resource`), when the authorization
    /// server needs it (MCP 2025-11-25 "Authorization" asks clients to send it).
    pub resource: Option<String>,
    /// Send the credentials in the form body instead of HTTP Basic.
    #[serde(default)]
    pub credentials_in_body: bool,
}

/// A cached access token.
#[derive(Default)]
pub(crate) struct TokenCache {
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl TokenCache {
    /// A valid access token: the cached one, or a new one from the token endpoint.
    ///
    /// # Errors
    /// A message naming the endpoint and what it answered (never the secret).
    pub(crate) async fn token(&self, config: &OAuthConfig, secret: &str) -> Result<String, String> {
        let mut cached = self.token.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && Instant::now() + RENEW_BEFORE < *expires
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = fetch(config, secret).await?;
        *cached = Some((token.clone(), Instant::now() + lifetime));
        Ok(token)
    }

    /// Forgets the token (the upstream refused it).
    pub(crate) async fn forget(&self) {
        *self.token.lock().await = None;
    }
}

async fn fetch(config: &OAuthConfig, secret: &str) -> Result<(String, Duration), String> {
    let endpoint = &config.token_url;
    let token_url = TokenUrl::new(endpoint.clone()).map_err(|e| format!("oauth.token_url '{endpoint}': {e}"))?;
    let auth_type = if config.credentials_in_body { AuthType::RequestBody } else { AuthType::BasicAuth };
    let client = BasicClient::new(ClientId::new(config.client_id.clone()))
        .set_client_secret(ClientSecret::new(secret.to_owned()))
        .set_token_uri(token_url)
        .set_auth_type(auth_type);
    let mut request = client.exchange_client_credentials();
    if let Some(scope) = &config.scope {
        request = request.add_scopes(scope.split_whitespace().map(|s| Scope::new(s.to_owned())));
    }
    if let Some(resource) = &config.resource {
        request = request.add_extra_param("resource", resource.clone());
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TOKEN_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let send = |request: oauth2::HttpRequest| {
        let http = http.clone();
        async move { send(&http, request).await }
    };
    let response = request.request_async(&send).await.map_err(|e| match e {
        oauth2::RequestTokenError::ServerResponse(error) => {
            format!("token endpoint {endpoint} refused: {}", error.error())
        }
        other => format!("token endpoint {endpoint}: {other}"),
    })?;
    let lifetime = response.expires_in().unwrap_or(DEFAULT_LIFETIME);
    Ok((response.access_token().secret().clone(), lifetime))
}

/// One token request over our reqwest (oauth2's own client is for another reqwest).
async fn send(http: &reqwest::Client, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, HttpError> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    let mut builder = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await.map_err(|e| HttpError(e.to_string()))?;
    builder.body(body.to_vec()).map_err(|e| HttpError(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HttpError(String);
