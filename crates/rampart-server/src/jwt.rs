//! JWT bearer tokens: Rampart as an OAuth 2.1 resource server (MCP 2025-11-25
//! "Authorization"; RFC 7519 JWT, RFC 9068 access-token profile, RFC 9728 protected
//! resource metadata).
//!
//! Each key has exactly one algorithm, taken from the key (the JWK's `alg`, or its type
//! for RSA/EC/OKP keys; `algorithm` for a PEM key), never from the token: a token whose
//! header names another algorithm is refused, so `alg: none` and HS256-signed-with-the-
//! RSA-public-key (algorithm confusion) cannot pass. HMAC keys are never loaded. `iss`,
//! `aud`, `exp` and `nbf` are required and checked; keys come from a JWKS URL (cached;
//! refreshed when a token names an unknown `kid`, at most once per
//! `jwks_refresh_min_secs`), a JWKS file, or a PEM file. A client's token is never passed
//! on to anything else.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet},
};
use rampart_auth::AuthError;
use rampart_config::JwtConfig;
use rampart_core::{Principal, PrincipalKind};
use serde_json::Value;

/// The JWT configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("auth.jwt: {0}")]
pub struct JwtConfigError(String);

struct Key {
    decoding: DecodingKey,
    algorithm: Algorithm,
}

enum KeySource {
    Url(String),
    Fixed,
}

struct KeyCache {
    keys: HashMap<Option<String>, Key>,
    fetched: Option<Instant>,
}

/// Verifies JWT bearer tokens and maps their claims to a [`Principal`].
pub struct JwtVerifier {
    config: JwtConfig,
    allowed: HashSet<Algorithm>,
    source: KeySource,
    cache: tokio::sync::Mutex<KeyCache>,
    http: reqwest::Client,
    last_failure: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .finish()
    }
}

fn algorithm(name: &str) -> Result<Algorithm, JwtConfigError> {
    let algorithm: Algorithm = name.parse().map_err(|_| JwtConfigError(format!("unknown algorithm '{name}'")))?;
    if matches!(algorithm, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(JwtConfigError(format!("{name}: shared-secret (HMAC) algorithms are not accepted")));
    }
    Ok(algorithm)
}

/// The one algorithm a JWK may be used with.
fn jwk_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if let Some(alg) = jwk.common.key_algorithm {
        return alg.to_string().parse().ok();
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
        // Shared secrets (`oct`) and anything newer: never.
        _ => None,
    }
}

/// The usable keys of a JWKS: signing keys with an allowed, non-HMAC algorithm.
fn keys_from_set(set: &JwkSet, allowed: &HashSet<Algorithm>) -> HashMap<Option<String>, Key> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            continue;
        }
        let Some(algorithm) = jwk_algorithm(jwk).filter(|a| allowed.contains(a)) else { continue };
        match DecodingKey::from_jwk(jwk) {
            Ok(decoding) => {
                keys.insert(jwk.common.key_id.clone(), Key { decoding, algorithm });
            }
            Err(error) => tracing::warn!(%error, kid = ?jwk.common.key_id, "JWKS key skipped"),
        }
    }
    keys
}

fn pem_key(pem: &[u8], algorithm: Algorithm) -> Result<DecodingKey, JwtConfigError> {
    let key = match algorithm {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => DecodingKey::from_rsa_pem(pem),
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
        _ => return Err(JwtConfigError("pem_file: unsupported algorithm".into())),
    };
    key.map_err(|e| JwtConfigError(format!("pem_file: {e}")))
}

/// Follows a dotted path (`realm_access.roles`) into the claims.
fn claim<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(claims, |value, part| value.get(part))
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

impl JwtVerifier {
    /// A verifier for `config`. Local key files are read now; a JWKS URL on first use.
    ///
    /// # Errors
    /// [`JwtConfigError`] for a missing or unreadable key source or a bad algorithm.
    pub fn new(config: &JwtConfig) -> Result<Self, JwtConfigError> {
        let allowed = config.algorithms.iter().map(|a| algorithm(a)).collect::<Result<HashSet<_>, _>>()?;
        let mut keys = HashMap::new();
        let source = match (&config.jwks_url, &config.jwks_file, &config.pem_file) {
            (Some(url), None, None) => {
                if !(url.starts_with("https://")
                    || url.starts_with("http://127.")
                    || url.starts_with("http://localhost"))
                {
                    return Err(JwtConfigError(format!("jwks_url '{url}' must be https (http only on loopback)")));
                }
                KeySource::Url(url.clone())
            }
            (None, Some(file), None) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| JwtConfigError(format!("jwks_file {}: {e}", file.display())))?;
                let set: JwkSet = serde_json::from_str(&text)
                    .map_err(|e| JwtConfigError(format!("jwks_file {}: {e}", file.display())))?;
                keys = keys_from_set(&set, &allowed);
                KeySource::Fixed
            }
            (None, None, Some(file)) => {
                let name =
                    config.algorithm.as_deref().ok_or_else(|| JwtConfigError("pem_file needs `algorithm`".into()))?;
                let algorithm = algorithm(name)?;
                let pem =
                    std::fs::read(file).map_err(|e| JwtConfigError(format!("pem_file {}: {e}", file.display())))?;
                keys.insert(None, Key { decoding: pem_key(&pem, algorithm)?, algorithm });
                KeySource::Fixed
            }
            _ => return Err(JwtConfigError("set exactly one of jwks_url, jwks_file, pem_file".into())),
        };
        if matches!(source, KeySource::Fixed) && keys.is_empty() {
            return Err(JwtConfigError("no usable signing key (allowed algorithms, no HMAC keys)".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| JwtConfigError(e.to_string()))?;
        Ok(Self {
            config: config.clone(),
            allowed,
            source,
            cache: tokio::sync::Mutex::new(KeyCache { keys, fetched: None }),
            http,
            last_failure: Mutex::new(None),
        })
    }

    /// The protected resource metadata document (RFC 9728 §2).
    pub fn metadata(&self) -> Value {
        let mut scopes: Vec<&String> =
            self.config.required_scopes.iter().chain(self.config.scope_roles.keys()).collect();
        scopes.sort();
        scopes.dedup();
        serde_json::json!({
            "resource": self.config.audience,
            "authorization_servers": [self.config.issuer],
            "scopes_supported": scopes,
            "bearer_methods_supported": ["header"],
            "resource_name": "Rampart MCP server",
        })
    }

    /// Its configuration (`[auth.jwt]`).
    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// The URL of the metadata document for this resource (RFC 9728 §3.1: the well-known
    /// suffix inserted between the resource identifier's host and path).
    pub fn metadata_url(&self) -> String {
        let audience = self.config.audience.trim_end_matches('/');
        match audience.split_once("://") {
            Some((scheme, rest)) => {
                let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
                let suffix = if path.is_empty() { String::new() } else { format!("/{path}") };
                format!("{scheme}://{host}/.well-known/oauth-protected-resource{suffix}")
            }
            None => "/.well-known/oauth-protected-resource".into(),
        }
    }

    /// The scopes every token needs (for the `scope` of a 403 challenge).
    pub fn required_scopes(&self) -> &[String] {
        &self.config.required_scopes
    }

    async fn refresh(&self, cache: &mut KeyCache) {
        let KeySource::Url(url) = &self.source else { return };
        let min = Duration::from_secs(self.config.jwks_refresh_min_secs);
        if cache.fetched.is_some_and(|at| at.elapsed() < min) {
            return;
        }
        cache.fetched = Some(Instant::now());
        let fetched = async {
            let response = self.http.get(url).send().await?.error_for_status()?;
            response.json::<JwkSet>().await
        }
        .await;
        match fetched {
            Ok(set) => {
                cache.keys = keys_from_set(&set, &self.allowed);
                tracing::info!(keys = cache.keys.len(), "JWKS fetched");
            }
            Err(error) => {
                tracing::error!(%error, "cannot fetch the JWKS");
                if let Ok(mut last) = self.last_failure.lock() {
                    *last = Some(Instant::now());
                }
            }
        }
    }

    /// Verifies `token` and returns its principal.
    ///
    /// # Errors
    /// [`AuthError::Invalid`] (signature, algorithm, `iss`, `aud`, `exp`, `nbf`, unknown
    /// key), [`AuthError::Malformed`] (not a JWT), [`AuthError::InsufficientScope`].
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::Malformed)?;
        let (decoding, algorithm) = {
            let mut cache = self.cache.lock().await;
            let lookup = |cache: &KeyCache| {
                cache
                    .keys
                    .get(&header.kid)
                    .or_else(|| if header.kid.is_none() { None } else { cache.keys.get(&None) })
                    .map(|k| (k.decoding.clone(), k.algorithm))
            };
            match lookup(&cache) {
                Some(found) => found,
                None => {
                    self.refresh(&mut cache).await;
                    lookup(&cache).ok_or(AuthError::Invalid)?
                }
            }
        };
        if header.alg != algorithm {
            tracing::warn!(token_alg = ?header.alg, key_alg = ?algorithm, "JWT algorithm does not match its key");
            return Err(AuthError::Invalid);
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.leeway = self.config.leeway_secs;
        validation.validate_nbf = true;
        validation.required_spec_claims = ["exp", "iss", "aud"].iter().map(|s| (*s).to_owned()).collect();
        let data = decode::<Value>(token, &decoding, &validation).map_err(|error| {
            tracing::debug!(%error, "JWT refused");
            AuthError::Invalid
        })?;
        let claims = data.claims;
        let scopes = strings(claims.get("scope").or_else(|| claims.get("scp")));
        if !self.config.required_scopes.iter().all(|s| scopes.contains(s)) {
            return Err(AuthError::InsufficientScope);
        }
        let subject = claim(&claims, &self.config.principal_claim).and_then(Value::as_str).ok_or(AuthError::Invalid)?;
        let mut roles = strings(claim(&claims, &self.config.roles_claim));
        for scope in &scopes {
            if let Some(granted) = self.config.scope_roles.get(scope) {
                roles.extend(granted.iter().cloned());
            }
        }
        roles.sort();
        roles.dedup();
        Ok(Principal { id: format!("jwt:{subject}"), kind: PrincipalKind::Jwt, roles })
    }
}

/// Whether a bearer value looks like a JWT (three base64url parts, a JSON header).
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.split('.').count() == 3
}
