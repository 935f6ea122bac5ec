//! The serde model of `rampart.toml`. Every table denies unknown keys.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::Secret;

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: transport, address, HTTP protections.
    pub server: ServerConfig,
    /// `[auth]`: credentials required on HTTP.
    pub auth: AuthConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// `[tools]`: which toolboxes are on, and their settings.
    pub tools: ToolsConfig,
}

/// Which transport `rampart serve` speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// Streamable HTTP at `/mcp`.
    #[default]
    Http,
    /// MCP on stdin/stdout.
    Stdio,
}

/// A named set of extra fixtures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Only the configured toolboxes.
    #[default]
    Default,
    /// Adds the fixtures the official MCP conformance suite calls. Never for production.
    Conformance,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `http` (default) or `stdio`.
    pub transport: TransportKind,
    /// HTTP listen address. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Serve streamable HTTP without sessions (load-balanced deployments).
    pub stateless: bool,
    /// `default` or `conformance`.
    pub profile: Profile,
    /// `Host` values accepted besides loopback names and the listen address (DNS-rebinding
    /// protection, MCP 2025-11-25 "Security Warning" of Streamable HTTP).
    pub allowed_hosts: Vec<String>,
    /// `Origin` values accepted (`scheme://host:port`); loopback origins always are.
    pub allowed_origins: Vec<String>,
    /// Allow a non-loopback listen address without authentication.
    pub insecure_no_auth: bool,
    /// Largest accepted request body, bytes. Default 4 MiB.
    pub max_body_bytes: usize,
    /// How long in-flight requests may run after SIGINT/SIGTERM, seconds. Default 10.
    pub shutdown_grace_secs: u64,
    /// Idle time after which an MCP session is closed, seconds. Default 300.
    pub session_idle_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            transport: TransportKind::Http,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            stateless: false,
            profile: Profile::Default,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            insecure_no_auth: false,
            max_body_bytes: 4 * 1024 * 1024,
            shutdown_grace_secs: 10,
            session_idle_secs: 300,
        }
    }
}

/// `[auth]`. With neither a key nor Basic set, HTTP is unauthenticated, which is allowed
/// only on a loopback address (or with `insecure_no_auth`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Static bearer key (`Authorization: Bearer <key>`, RFC 6750).
    pub key: Option<Secret>,
    /// HTTP Basic (RFC 7617).
    pub basic: Option<BasicAuthConfig>,
}

/// `[auth.basic]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// User name.
    pub user: String,
    /// Argon2 PHC string (`$argon2id$v=19$...`), e.g. from `rampart hash-password`.
    pub password_hash: Secret,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `rampart_server=debug,info`. Default `info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into() }
    }
}

/// `[tools]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// Enabled toolboxes. Default `["system"]`.
    pub enabled: Vec<String>,
    /// `[tools.system]`.
    pub system: SystemToolsConfig,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self { enabled: vec!["system".into()], system: SystemToolsConfig::default() }
    }
}

/// `[tools.system]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemToolsConfig {
    /// IANA time zone used when a time tool is called without one. Default: the system's
    /// zone (`TZ`, `/etc/localtime`), else UTC.
    pub local_timezone: Option<String>,
}

/// The commented example that `rampart init` writes. It parses to the defaults.
pub const EXAMPLE_CONFIG: &str = r#"# rampart.toml: Rampart's configuration.
# Precedence, highest first: command-line flags > RAMPART_* environment variables
# (and a .env file) > this file > built-in defaults. Unknown keys are errors.
# `rampart config check` prints the effective configuration, secrets masked.

[server]
# "http" (streamable HTTP at /mcp) or "stdio".
transport = "http"
# Listen address. A non-loopback address requires authentication (see [auth]).
listen = "127.0.0.1:8080"
# true: no MCP sessions (for load balancers). 2026-07-28 clients are always stateless.
stateless = false
# "default", or "conformance" to add the MCP conformance-suite fixtures (tests only).
profile = "default"
# Extra Host header values to accept (DNS-rebinding protection), e.g. ["mcp.example.com"].
allowed_hosts = []
# Extra Origin values to accept, e.g. ["https://app.example.com"].
allowed_origins = []
# Allow a non-loopback address without authentication. Do not.
insecure_no_auth = false
# Largest request body in bytes.
max_body_bytes = 4194304
# Seconds in-flight calls may take to finish after SIGINT/SIGTERM.
shutdown_grace_secs = 10
# Seconds of inactivity after which a session is closed.
session_idle_secs = 300

[auth]
# Static bearer key; prefer RAMPART_AUTH_KEY or --auth-key over writing it here.
# key = "change-me"

# HTTP Basic; make the hash with `rampart hash-password`.
# [auth.basic]
# user = "alice"
# password_hash = "$argon2id$v=19$m=19456,t=2,p=1$..."

[log]
# A tracing filter: "info", "debug", "rampart_server=debug,info".
level = "info"

[tools]
# Enabled toolboxes.
enabled = ["system"]

[tools.system]
# IANA zone used when a time tool is called without one (default: the system's).
# local_timezone = "Europe/Paris"
"#;
