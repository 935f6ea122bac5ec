//! The `[http]` table of `rampart.toml`: named APIs, each with a base URL, the methods and
//! path globs agents may use, static headers, a credential taken from the environment at
//! request time, limits, and whether private addresses are allowed; and the optional
//! `[http.fetch]` host allowlist. Unknown keys are errors that name the key.

use std::collections::BTreeMap;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

/// The `[http]` table.
///
/// ```toml
/// [http.apis.github]
/// base_url = "https://api.github.com"
/// methods = ["GET"]                               # default ["GET"]
/// paths = ["/repos/**", "/user"]                  # default ["/**"]
/// headers = { "Accept" = "application/vnd.github+json" }
/// auth = { kind = "bearer", env = "GITHUB_TOKEN" }
/// timeout_ms = 10000                              # default 10000
/// max_response_bytes = 1048576                    # default 1 MiB
/// allow_private = false                           # default false
///
/// [http.fetch]                                    # http_fetch, off by default
/// enabled = true
/// hosts = ["docs.rs", "*.example.com"]
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// APIs by name. The name is what `http_request` takes as `api`, what the policy's
    /// `http_apis` patterns match, and what `/readyz` reports as `http:NAME`.
    #[serde(default)]
    pub apis: BTreeMap<String, ApiConfig>,
    /// `http_fetch`: reading web pages on allowed hosts.
    #[serde(default)]
    pub fetch: FetchConfig,
}

/// One `[http.apis.NAME]` table. Holds no secret: `auth` names an environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// `http://` or `https://` URL without user info, query or fragment. Its path is the
    /// prefix of every request's path.
    pub base_url: String,
    /// What the API is for, shown to the model by `http_list_apis`.
    #[serde(default)]
    pub description: Option<String>,
    /// Allowed methods (case-insensitive): GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS.
    /// Default `["GET"]`.
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Allowed request paths, as globs over the path below `base_url` (`*` stays within
    /// one segment, `**` crosses segments). Default `["/**"]`.
    #[serde(default = "default_paths")]
    pub paths: Vec<String>,
    /// Headers sent with every request to the API's origin.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The credential, injected server-side.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// Time allowed for one call, redirects and body included, in milliseconds. Default
    /// 10000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The most body bytes returned; longer bodies are truncated. Default 1 MiB.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// Whether the base URL's host may resolve to loopback, private, link-local and other
    /// non-public addresses. Applies to that host only, never to redirect targets
    /// elsewhere. Default `false`.
    #[serde(default)]
    pub allow_private: bool,
    /// An OpenAPI 3 document (JSON; a relative path starts beside the configuration file)
    /// whose operations become tools named `NAME_<operationId>`.
    #[serde(default)]
    pub openapi: Option<String>,
}

/// How the credential is sent. The secret is read from `env` at each request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// `Authorization: Bearer <secret>`.
    Bearer {
        /// The environment variable holding the token.
        env: String,
    },
    /// `Authorization: Basic base64(user:<secret>)` (RFC 7617).
    Basic {
        /// The user name (not secret).
        user: String,
        /// The environment variable holding the password.
        env: String,
    },
    /// `<name>: <secret>`, e.g. `X-Api-Key`.
    Header {
        /// The header name.
        name: String,
        /// The environment variable holding the key.
        env: String,
    },
}

impl AuthConfig {
    /// The environment variable holding the secret.
    pub fn env(&self) -> &str {
        match self {
            Self::Bearer { env } | Self::Basic { env, .. } | Self::Header { env, .. } => env,
        }
    }

    /// `bearer`, `basic` or `header`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Bearer { .. } => "bearer",
            Self::Basic { .. } => "basic",
            Self::Header { .. } => "header",
        }
    }
}

/// The `[http.fetch]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchConfig {
    /// Whether `http_fetch` is served. Default `false`.
    #[serde(default)]
    pub enabled: bool,
    /// Allowed host names, as globs (`*.example.com`). Redirects must stay on them too.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Time allowed for one fetch, in milliseconds. Default 10000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The most body bytes read; longer pages are truncated. Default 2 MiB.
    #[serde(default = "default_fetch_bytes")]
    pub max_response_bytes: u64,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            hosts: Vec::new(),
            timeout_ms: default_timeout_ms(),
            max_response_bytes: default_fetch_bytes(),
        }
    }
}

fn default_methods() -> Vec<String> {
    vec!["GET".into()]
}

fn default_paths() -> Vec<String> {
    vec!["/**".into()]
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_max_response_bytes() -> u64 {
    1024 * 1024
}

fn default_fetch_bytes() -> u64 {
    2 * 1024 * 1024
}

/// The methods an API may allow.
pub(crate) const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// The largest `timeout_ms` accepted (five minutes).
const TIMEOUT_LIMIT_MS: u64 = 300_000;
/// The largest `max_response_bytes` accepted (64 MiB).
const BYTES_LIMIT: u64 = 64 * 1024 * 1024;
/// Headers the configuration may not set: the client owns them (framing, routing).
const RESERVED_HEADERS: [&str; 7] =
    ["host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"];

/// Headers that carry credentials: configured through `auth` only, so that the value is
/// read from the environment and redacted.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// The `[http]` table is invalid; every variant names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpConfigError {
    /// The table does not deserialize: an unknown key, a wrong type, a missing field.
    #[error("{key}: {message}")]
    Invalid {
        /// The dotted key, e.g. `http.apis.crm.auth`.
        key: String,
        /// serde's message, e.g. "unknown field `method`, expected one of …".
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("{key}: {message}")]
    Value {
        /// The dotted key, e.g. `http.apis.crm.methods[1]`.
        key: String,
        /// What is wrong and what is accepted.
        message: String,
    },
}

impl HttpConfig {
    /// Reads the `[http]` table (as JSON) and validates it, without IO (the OpenAPI
    /// documents are read by [`crate::HttpToolbox::from_config`]).
    ///
    /// # Errors
    /// [`HttpConfigError`] naming the first offending key.
    pub fn from_value(value: Value) -> Result<Self, HttpConfigError> {
        if value.is_null() {
            return Ok(Self::default());
        }
        let config: Self = serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            let key = if path == "." { "http".to_owned() } else { format!("http.{path}") };
            HttpConfigError::Invalid { key, message: error.into_inner().to_string() }
        })?;
        for (name, api) in &config.apis {
            api.validate(name)?;
        }
        config.fetch.validate()?;
        Ok(config)
    }
}

fn value_error(key: String, message: impl Into<String>) -> HttpConfigError {
    HttpConfigError::Value { key, message: message.into() }
}

/// Names usable as tool-name prefixes and policy scopes.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 48 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl ApiConfig {
    fn validate(&self, name: &str) -> Result<(), HttpConfigError> {
        let key = format!("http.apis.{name}");
        if !valid_name(name) {
            return Err(value_error(key, "an API name may use only letters, digits, '_' and '-' (at most 48)"));
        }
        base_url(&self.base_url).map_err(|message| value_error(format!("{key}.base_url"), message))?;
        if self.methods.is_empty() {
            return Err(value_error(format!("{key}.methods"), "allow at least one method"));
        }
        for (index, method) in self.methods.iter().enumerate() {
            if !METHODS.contains(&method.to_ascii_uppercase().as_str()) {
                let message = format!("unknown method \"{method}\": use one of {}", METHODS.join(", "));
                return Err(value_error(format!("{key}.methods[{index}]"), message));
            }
        }
        path_globs(&self.paths).map_err(|(index, message)| value_error(format!("{key}.paths[{index}]"), message))?;
        for (header, value) in &self.headers {
            header_pair(header, value).map_err(|message| value_error(format!("{key}.headers.{header}"), message))?;
        }
        if let Some(auth) = &self.auth {
            validate_auth(auth, &format!("{key}.auth"))?;
        }
        limits(&key, self.timeout_ms, self.max_response_bytes)
    }

    /// The methods, upper-case.
    pub(crate) fn method_list(&self) -> Vec<String> {
        let mut methods: Vec<String> = self.methods.iter().map(|method| method.to_ascii_uppercase()).collect();
        methods.dedup();
        methods
    }
}

fn validate_auth(auth: &AuthConfig, key: &str) -> Result<(), HttpConfigError> {
    let env = auth.env();
    if env.is_empty() || env.contains('=') || env.contains('\0') {
        return Err(value_error(format!("{key}.env"), "name an environment variable"));
    }
    match auth {
        AuthConfig::Basic { user, .. } if user.contains(':') => {
            Err(value_error(format!("{key}.user"), "a Basic user name may not contain ':' (RFC 7617)"))
        }
        AuthConfig::Header { name, .. } => {
            header_pair(name, "x").map_err(|message| value_error(format!("{key}.name"), message))
        }
        _ => Ok(()),
    }
}

fn limits(key: &str, timeout_ms: u64, max_response_bytes: u64) -> Result<(), HttpConfigError> {
    if !(1..=TIMEOUT_LIMIT_MS).contains(&timeout_ms) {
        return Err(value_error(format!("{key}.timeout_ms"), format!("must be between 1 and {TIMEOUT_LIMIT_MS}")));
    }
    if !(1..=BYTES_LIMIT).contains(&max_response_bytes) {
        let message = format!("must be between 1 and {BYTES_LIMIT} (64 MiB)");
        return Err(value_error(format!("{key}.max_response_bytes"), message));
    }
    Ok(())
}

impl FetchConfig {
    fn validate(&self) -> Result<(), HttpConfigError> {
        host_globs(&self.hosts)
            .map_err(|(index, message)| value_error(format!("http.fetch.hosts[{index}]"), message))?;
        if self.enabled && self.hosts.is_empty() {
            return Err(value_error("http.fetch.hosts".into(), "fetch is enabled but allows no host"));
        }
        limits("http.fetch", self.timeout_ms, self.max_response_bytes)
    }
}

/// Parses and checks a base URL: http(s), a host, no user info, query or fragment.
///
/// # Errors
/// What is wrong, in words (the URL holds no secret: user info is refused).
pub(crate) fn base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|error| format!("not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme '{}' is not allowed: use http or https", url.scheme()));
    }
    if url.host().is_none() {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("user info in the URL is not allowed: use `auth` with an environment variable".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a base URL may not have a query or a fragment".into());
    }
    Ok(url)
}

fn glob(pattern: &str) -> Result<Glob, String> {
    GlobBuilder::new(pattern).literal_separator(true).build().map_err(|error| error.to_string())
}

/// Compiles path globs; each must start with `/`.
///
/// # Errors
/// The index of the bad pattern and why.
pub(crate) fn path_globs(patterns: &[String]) -> Result<GlobSet, (usize, String)> {
    let mut set = GlobSetBuilder::new();
    for (index, pattern) in patterns.iter().enumerate() {
        if !pattern.starts_with('/') {
            return Err((index, format!("path pattern \"{pattern}\" must start with '/'")));
        }
        set.add(glob(pattern).map_err(|message| (index, message))?);
    }
    set.build().map_err(|error| (0, error.to_string()))
}

/// Compiles host globs (case-insensitive).
///
/// # Errors
/// The index of the bad pattern and why.
pub(crate) fn host_globs(patterns: &[String]) -> Result<GlobSet, (usize, String)> {
    let mut set = GlobSetBuilder::new();
    for (index, pattern) in patterns.iter().enumerate() {
        if pattern.is_empty() || pattern.contains(['/', ':', '@', ' ']) {
            return Err((index, format!("\"{pattern}\" is not a host name pattern (no scheme, port or path)")));
        }
        let compiled = GlobBuilder::new(&pattern.to_ascii_lowercase())
            .literal_separator(true)
            .build()
            .map_err(|error| (index, error.to_string()))?;
        set.add(compiled);
    }
    set.build().map_err(|error| (0, error.to_string()))
}

fn header_pair(name: &str, value: &str) -> Result<(), String> {
    let parsed = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| "not a valid header name".to_owned())?;
    if RESERVED_HEADERS.contains(&parsed.as_str()) {
        return Err(format!("the client sets {name} itself"));
    }
    if CREDENTIAL_HEADERS.contains(&parsed.as_str()) {
        return Err("a credential belongs in `auth`, read from the environment (header values are not secret)".into());
    }
    http::HeaderValue::from_str(value).map_err(|_| "not a valid header value".to_owned())?;
    Ok(())
}
