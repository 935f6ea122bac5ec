//! The serde model of `rampart.toml`. Every table denies unknown keys.

use std::{net::SocketAddr, path::PathBuf};

use rampart_policy::PolicyConfig;

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
    /// `[telemetry]`: OpenTelemetry traces, exported over OTLP.
    pub telemetry: TelemetryConfig,
    /// `[tools]`: which toolboxes are on, and their settings.
    pub tools: ToolsConfig,
    /// `[store]`: where tokens and audit records live.
    pub store: StoreConfig,
    /// `[audit]`.
    pub audit: AuditConfig,
    /// `[stdio]`: who the caller is on stdio.
    pub stdio: StdioConfig,
    /// `[dbus]`: the D-Bus transport's bus and its allowed Unix users.
    pub dbus: DbusConfig,
    /// `[roles.NAME]`: roles, added to the built-in `public`, `reader`, `writer`, `admin`.
    pub roles: PolicyConfig,
    /// `[cluster]`: what replicas behind one load balancer share (Redis).
    pub cluster: ClusterConfig,
    /// `[limits]`: rate limits, caps and timeouts.
    pub limits: LimitsConfig,
    /// `[tls]`: serve HTTPS (TLS 1.3 only), optionally requiring client certificates.
    pub tls: Option<TlsConfig>,
    /// `[fs]`: the filesystem toolbox (validated by `rampart-fs`; enable it with
    /// `tools.enabled = [..., "fs"]`).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub fs: serde_json::Value,
    /// `[sql]`: the SQL toolbox (validated by `rampart-sql`; enable it with
    /// `tools.enabled = [..., "sql"]`).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub sql: serde_json::Value,
    /// `[http]`: the HTTP APIs toolbox (validated by `rampart-http`; enable it with
    /// `tools.enabled = [..., "http"]`).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub http: serde_json::Value,
    /// `[exec]`: sandboxed command execution (validated by `rampart-exec`; enable it with
    /// `tools.enabled = [..., "exec"]`).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub exec: serde_json::Value,
    /// `[upstreams.NAME]`: MCP servers mounted behind Rampart (validated by
    /// `rampart-gateway`; each one is a toolbox `upstream:NAME`, no `tools.enabled`
    /// entry needed).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub upstreams: serde_json::Value,
    /// `[toolbox.NAME]`: settings of the toolboxes a program built on the `rampart` crate
    /// adds (each handed its own table; an unknown NAME is an error there).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub toolbox: serde_json::Value,
}

/// `[limits]`. A value of 0 means unlimited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per minute per principal, all methods (burst: the same number). Default 0.
    pub calls_per_minute: u32,
    /// Tool calls running at once per principal. Default 32.
    pub concurrent_calls: u32,
    /// Longest a tool call may run, seconds. Default 300.
    pub call_timeout_secs: u64,
    /// Failed authentications per minute per remote address before it gets 429. Default 30.
    pub failed_auth_per_minute: u32,
    /// Time a client has to send its request headers, seconds. Default 10.
    pub header_read_timeout_secs: u64,
    /// Time an authenticated client has to send a request's body once its headers are
    /// in, seconds (408 after). Default 30: a 4 MiB body at 1 Mbit/s takes 34 s; raise
    /// it with `server.max_body_bytes` for slow links.
    pub body_read_timeout_secs: u64,
    /// How long a tool call run as a task (the tasks extension) stays observable, seconds;
    /// its result is kept up to this long again after it ends. Never less than
    /// `call_timeout_secs` + 60, so that a call times out (and is recorded) before its
    /// task expires. Default 900.
    pub task_ttl_secs: u64,
    /// Tasks (running or kept) one principal may hold at once; beyond, calls are
    /// answered in their own response. Default 64.
    pub tasks_per_principal: u32,
    /// A call that may run as a task becomes one only if it is still running after this
    /// long, milliseconds; one that ends sooner is answered in its response (SEP-2663
    /// immediate result). Default 500. Raise it for clients that declare the tasks
    /// extension without following tasks (the MCP Inspector 2.12 CLI's `tools/call`).
    pub task_after_ms: u64,
    /// `[limits.tools.NAME] calls = N, period_secs = S`: per principal, for one tool.
    pub tools: std::collections::BTreeMap<String, ToolLimit>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            calls_per_minute: 0,
            concurrent_calls: 32,
            call_timeout_secs: 300,
            failed_auth_per_minute: 30,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            task_ttl_secs: 900,
            tasks_per_principal: 64,
            task_after_ms: 500,
            tools: Default::default(),
        }
    }
}

/// `[limits.tools.NAME]`: at most `calls` calls per `period_secs` per principal (a
/// token bucket: the quota refills evenly over the period).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolLimit {
    /// Calls allowed per period.
    pub calls: u32,
    /// The period, seconds. Default 60.
    #[serde(default = "sixty")]
    pub period_secs: u64,
}

fn sixty() -> u64 {
    60
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
    /// MCP over D-Bus (`org.rampart.Mcp1` on the bus of `[dbus] bus`).
    Dbus,
}

/// `[dbus]`: the D-Bus transport (`server.transport = "dbus"`). Callers are the Unix users
/// the bus daemon vouches for; only those listed in `users` may call (deny by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbusConfig {
    /// `session` (default) or `system`.
    pub bus: DbusBus,
    /// `[dbus.users.UID] roles = [...]`: the roles of the principal `uid:UID`.
    pub users: std::collections::BTreeMap<String, DbusUser>,
}

/// Which message bus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbusBus {
    /// The user's session bus (`DBUS_SESSION_BUS_ADDRESS`).
    #[default]
    Session,
    /// The system bus (its policy must let Rampart own `org.rampart.Mcp1`).
    System,
}

/// One Unix user allowed on the D-Bus transport.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbusUser {
    /// Role names, e.g. `["reader"]`.
    pub roles: Vec<String>,
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
    /// Proxies in front of Rampart (load balancers, ingress), as addresses or CIDR ranges:
    /// a request from one of them is attributed to the client its `X-Forwarded-For` names
    /// (the rightmost entry that is not itself a trusted proxy) for failed-login
    /// throttling, audit records and logs. Empty (default): the TCP peer, always.
    pub trusted_proxies: Vec<String>,
    /// Allow a non-loopback listen address without authentication.
    pub insecure_no_auth: bool,
    /// Largest accepted request body, bytes. Default 4 MiB.
    pub max_body_bytes: usize,
    /// How long in-flight requests may run after SIGINT/SIGTERM, seconds. Default 10.
    pub shutdown_grace_secs: u64,
    /// Idle time after which an MCP session is closed, seconds. Default 300.
    pub session_idle_secs: u64,
    /// Serve `/metrics` on this separate address, without authentication. Default: on
    /// the main address, behind authentication.
    pub metrics_listen: Option<SocketAddr>,
    /// Also serve the legacy HTTP+SSE transport (MCP 2024-11-05) for clients that only
    /// speak it, behind the same authentication and checks as `/mcp`. Default `true`.
    pub legacy_sse: bool,
    /// Where its event streams open (`GET`). Default `/sse`.
    pub legacy_sse_path: String,
    /// Where its messages are POSTed (`?session_id=…`). Default `/messages`.
    pub legacy_messages_path: String,
    /// Also serve MCP over WebSocket at `/ws` (subprotocol `mcp`), behind the same
    /// authentication and Host/Origin checks. Default `true`.
    pub websocket: bool,
    /// Serve the web console at `/console`: sign-in with an API token, then pages that
    /// show live calls, the audit log, tokens, the policy, tools, upstreams and the server,
    /// each as the signed-in principal's roles allow (`scopes.console`). Default `false`.
    pub console: bool,
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
            trusted_proxies: Vec::new(),
            insecure_no_auth: false,
            max_body_bytes: 4 * 1024 * 1024,
            shutdown_grace_secs: 10,
            session_idle_secs: 300,
            metrics_listen: None,
            legacy_sse: true,
            legacy_sse_path: "/sse".into(),
            legacy_messages_path: "/messages".into(),
            websocket: true,
            console: false,
        }
    }
}

/// `[auth]`. HTTP callers authenticate with an API token (`rampart token create`), the
/// static key, or Basic. With `server.insecure_no_auth` nobody authenticates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Static bearer key (`Authorization: Bearer <key>`, RFC 6750).
    pub key: Option<Secret>,
    /// Principal id of the static key's holder. Default `static-key`.
    pub key_principal: String,
    /// Roles of the static key's holder. Default `["admin"]`.
    pub key_roles: Vec<String>,
    /// HTTP Basic (RFC 7617).
    pub basic: Option<BasicAuthConfig>,
    /// Let requests without credentials in, as principal `anonymous` with
    /// `anonymous_roles` (wrong credentials are still refused). Default `false`.
    pub anonymous: bool,
    /// Roles of unauthenticated callers. Default `["public"]`, or `["admin"]` under
    /// `server.insecure_no_auth`.
    pub anonymous_roles: Option<Vec<String>>,
    /// `[auth.jwt]`: accept JWT bearer tokens from an OAuth 2.1 authorization server.
    pub jwt: Option<JwtConfig>,
}

/// `[auth.jwt]`: Rampart as an OAuth 2.1 resource server (MCP 2025-11-25
/// "Authorization"; RFC 9068 access tokens, RFC 9728 protected resource metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Expected `iss`: the authorization server's issuer URL.
    pub issuer: String,
    /// Expected `aud`: this server's resource identifier, e.g. `https://mcp.example.com/mcp`.
    pub audience: String,
    /// Where the signing keys are: a JWKS URL (cached; refreshed on an unknown `kid`).
    pub jwks_url: Option<String>,
    /// Or a local JWKS file.
    pub jwks_file: Option<PathBuf>,
    /// Or one public key in PEM (RSA, EC or Ed25519) with `algorithm`.
    pub pem_file: Option<PathBuf>,
    /// The algorithm of `pem_file` (e.g. `RS256`, `ES256`, `EdDSA`).
    pub algorithm: Option<String>,
    /// Algorithms accepted at all. Default `["RS256", "ES256", "EdDSA"]`; HMAC (`HS*`)
    /// and `none` are never accepted.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Scopes every token must carry, else 403 `insufficient_scope`. Default none.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Claim holding role names (dotted path, e.g. `realm_access.roles`). Default `roles`.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Roles granted per scope, e.g. `{ "mcp:read" = ["reader"] }`.
    #[serde(default)]
    pub scope_roles: std::collections::BTreeMap<String, Vec<String>>,
    /// Claim naming the principal. Default `sub`.
    #[serde(default = "default_principal_claim")]
    pub principal_claim: String,
    /// Clock skew allowed on `exp`/`nbf`, seconds. Default 30.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Least time between two JWKS fetches, seconds (an unknown `kid` triggers one). Default 60.
    #[serde(default = "sixty")]
    pub jwks_refresh_min_secs: u64,
    /// The OAuth client id the web console signs people in with (`server.console`): an
    /// OpenID Connect login, authorization code with PKCE (RFC 7636) as a public client,
    /// redirect URI `https://HOST/console/login/oidc/callback`, asking for an access
    /// token for `audience` (RFC 8707 `resource`). None: the console takes tokens only.
    #[serde(default)]
    pub console_client_id: Option<String>,
    /// The authorization server's authorization endpoint. Default: from its metadata
    /// (RFC 8414 `/.well-known/oauth-authorization-server`, else OpenID Connect
    /// discovery `/.well-known/openid-configuration`) under `issuer`.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// Its token endpoint. Default: from the same metadata.
    #[serde(default)]
    pub token_endpoint: Option<String>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into(), "EdDSA".into()]
}

fn default_roles_claim() -> String {
    "roles".into()
}

fn default_principal_claim() -> String {
    "sub".into()
}

fn default_leeway() -> u64 {
    30
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            key: None,
            key_principal: "static-key".into(),
            key_roles: vec!["admin".into()],
            basic: None,
            anonymous: false,
            anonymous_roles: None,
            jwt: None,
        }
    }
}

/// `[auth.basic]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// User name.
    pub user: String,
    /// Argon2 PHC string (`$argon2id$v=19$...`), e.g. from `rampart hash-password`.
    pub password_hash: Secret,
    /// Roles of this user. Default `["admin"]`.
    #[serde(default = "admin_roles")]
    pub roles: Vec<String>,
}

fn admin_roles() -> Vec<String> {
    vec!["admin".into()]
}

/// `[cluster]`: several replicas of one server behind a load balancer, on one store.
/// Without `redis_url` each replica keeps its limits and caches to itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// `redis://HOST:6379/0` (or `rediss://` for TLS): rate limits and failed-login
    /// throttling counted across replicas, and revoked tokens and reloads applied by every
    /// replica at once. The server does not start when it cannot reach it.
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key and channel, so that several deployments can share one
    /// Redis. Default `rampart`.
    pub namespace: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self { redis_url: None, namespace: "rampart".into() }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory of the embedded SQLite database (`rampart.db`). Default:
    /// `$XDG_DATA_HOME/rampart`, else `~/.local/share/rampart`, else `./rampart-data`.
    pub data_dir: Option<PathBuf>,
    /// `postgres://USER:PASSWORD@HOST/DB` to use PostgreSQL instead of SQLite.
    pub database_url: Option<Secret>,
}

impl StoreConfig {
    /// The data directory, defaults applied.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(xdg).join("rampart");
        }
        if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(home).join(".local/share/rampart");
        }
        PathBuf::from("rampart-data")
    }
}

/// What to do when the audit log cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditFailure {
    /// Refuse calls (default).
    #[default]
    Closed,
    /// Serve calls and log the failure.
    Open,
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Record every request. Default `true`.
    pub enabled: bool,
    /// Write JSON lines to this file instead of the store.
    pub file: Option<PathBuf>,
    /// `closed` (default): refuse calls when the log cannot be written; `open`: serve.
    pub on_failure: AuditFailure,
    /// `false` (default): a call's result is released once its record is queued; the
    /// writer stores it within about 25 ms, and a graceful shutdown stores what is queued,
    /// but a crash (`kill -9`, power loss) loses the records still queued. `true`: the
    /// result waits until its record is stored (PostgreSQL's `synchronous_commit`), at
    /// about half the throughput (bench/README.md).
    pub synchronous: bool,
    /// Records waiting to be written before callers wait (then fail). Default 4096: more
    /// than the writer gathers in one group-commit pause (25 ms) at 100k calls/s.
    pub queue_capacity: usize,
    /// Extra secret values to redact from records (the auth key is always redacted).
    pub redact: Vec<Secret>,
    /// The Ed25519 key (PKCS#8 PEM) that signs audit checkpoints; generated on the first
    /// run (mode 0600), its public key written beside it (`NAME.pub.pem`). Keep it where
    /// whoever can write the audit store cannot read it. Default
    /// `<store.data_dir>/audit-signing-key.pem` ([`Config::audit_signing_key`]).
    pub signing_key: Option<PathBuf>,
    /// The append-only file of signed checkpoints (JSON lines). Default
    /// `<store.data_dir>/audit-checkpoints.jsonl` ([`Config::audit_checkpoints`]).
    pub checkpoints: Option<PathBuf>,
    /// Sign a checkpoint once this many records were stored since the last one. Default
    /// 1000; 0: not by count.
    pub checkpoint_every: u64,
    /// Sign a checkpoint at most this many seconds after a record was stored. Default 60;
    /// 0: not by time. With both 0, no checkpoints are signed (and no key is made).
    pub checkpoint_interval_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            file: None,
            on_failure: AuditFailure::Closed,
            synchronous: false,
            queue_capacity: 4096,
            redact: Vec::new(),
            signing_key: None,
            checkpoints: None,
            checkpoint_every: 1000,
            checkpoint_interval_secs: 60,
        }
    }
}

impl AuditConfig {
    /// Whether the audit writer signs checkpoints: by count, by time, or both.
    pub fn checkpoints_enabled(&self) -> bool {
        self.checkpoint_every > 0 || self.checkpoint_interval_secs > 0
    }
}

impl Config {
    /// `audit.signing_key`, or `audit-signing-key.pem` in the data directory.
    pub fn audit_signing_key(&self) -> PathBuf {
        self.audit.signing_key.clone().unwrap_or_else(|| self.store.data_dir().join("audit-signing-key.pem"))
    }

    /// `audit.checkpoints`, or `audit-checkpoints.jsonl` in the data directory.
    pub fn audit_checkpoints(&self) -> PathBuf {
        self.audit.checkpoints.clone().unwrap_or_else(|| self.store.data_dir().join("audit-checkpoints.jsonl"))
    }
}

/// `[stdio]`: the principal of a stdio server (whoever started the process).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StdioConfig {
    /// Principal id. Default `local`.
    pub principal: String,
    /// Roles. Default `["admin"]`: the local operator has full access.
    pub roles: Vec<String>,
}

impl Default for StdioConfig {
    fn default() -> Self {
        Self { principal: "local".into(), roles: admin_roles() }
    }
}

/// `[tls]`: TLS 1.3 with rustls; with `client_ca`, mutual TLS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Server certificate chain, PEM.
    pub cert: PathBuf,
    /// Server private key, PEM.
    pub key: PathBuf,
    /// CA certificates (PEM) that sign client certificates: when set, every client must
    /// present a certificate signed by one of them.
    pub client_ca: Option<PathBuf>,
    /// Certificate revocation lists (PEM) for client certificates.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// Client identities (certificate subject CN, or a DNS/URI/email SAN) mapped to a
    /// principal: `[tls.clients."ci-bot.example.com"] roles = ["reader"]`.
    #[serde(default)]
    pub clients: std::collections::BTreeMap<String, TlsClient>,
}

/// `[tls.clients.IDENTITY]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsClient {
    /// Principal id. Default `cert:IDENTITY`.
    pub principal: Option<String>,
    /// Roles.
    pub roles: Vec<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with span fields (request id, principal, …).
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `rampart_server=debug,info`. Default `info`.
    pub level: String,
    /// `text` (default) or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Text }
    }
}

/// `[telemetry]`: OpenTelemetry traces of every request (the HTTP request, the MCP
/// request, the pipeline, the tool, and what the tool calls: an upstream, a database, an
/// API), exported over OTLP/HTTP. A caller's W3C `traceparent` (header, or `_meta` per
/// SEP-414) is continued and passed on; each audit record gets its trace id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP address, e.g. `http://127.0.0.1:4318` (spans are POSTed
    /// to `/v1/traces` under it, unless the URL already ends so). Default none: nothing is
    /// exported, and no span is made beyond those of the log.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans. Default `rampart`.
    pub service_name: String,
    /// The fraction of new traces that are recorded and exported, 0.0 to 1.0. Default 1.0.
    /// A trace a caller started keeps the caller's decision (its `traceparent`'s sampled
    /// flag).
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { otlp_endpoint: None, service_name: "rampart".into(), sample_ratio: 1.0 }
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
# Serve /metrics on a separate address without authentication (default: /metrics on the
# main address, behind authentication).
# metrics_listen = "127.0.0.1:9090"
# The legacy HTTP+SSE transport (MCP 2024-11-05) for older clients: GET /sse opens a
# stream, messages are POSTed to /messages?session_id=... Same authentication as /mcp.
legacy_sse = true
legacy_sse_path = "/sse"
legacy_messages_path = "/messages"
# MCP over WebSocket at /ws (subprotocol "mcp"; browsers may send their token as the
# subprotocol "bearer.TOKEN"). Same authentication and Origin checks as /mcp.
websocket = true
# The web console at /console (sign in with an API token; pages follow the principal's
# roles: grant them with scopes = { console = [{ name = "*", access = "read" }] }).
console = false

[auth]
# Static bearer key; prefer RAMPART_AUTH_KEY or --auth-key over writing it here.
# key = "change-me"

# HTTP Basic; make the hash with `rampart hash-password`.
# [auth.basic]
# user = "alice"
# password_hash = "$argon2id$v=19$m=19456,t=2,p=1$..."
# roles = ["admin"]

# Roles of the static key's holder, and its principal id.
key_principal = "static-key"
key_roles = ["admin"]
# JWT bearer tokens from an OAuth 2.1 authorization server (Keycloak, Auth0, Entra ID…):
# [auth.jwt]
# issuer = "https://idp.example.com/realms/acme"
# audience = "https://mcp.example.com/mcp"
# jwks_url = "https://idp.example.com/realms/acme/protocol/openid-connect/certs"
# required_scopes = ["mcp"]
# roles_claim = "realm_access.roles"
# scope_roles = { "mcp:read" = ["reader"], "mcp:write" = ["writer"] }
# The console's "Sign in with" button (authorization code + PKCE, a public client whose
# redirect URI is https://HOST/console/login/oidc/callback):
# console_client_id = "rampart-console"
# Let requests without credentials in with anonymous_roles (default ["public"]: only
# system_health). Wrong credentials are refused either way.
anonymous = false
# anonymous_roles = ["public"]

[log]
# A tracing filter: "info", "debug", "rampart_server=debug,info".
level = "info"

[telemetry]
# OpenTelemetry traces over OTLP/HTTP: a span per request (HTTP, MCP request, pipeline,
# tool, and the upstream, database or API it calls), continuing a caller's W3C
# traceparent (HTTP header or _meta) and passing it on; each audit record gets the trace
# id. Without an endpoint nothing is exported. A collector's credentials go in
# OTEL_EXPORTER_OTLP_HEADERS (e.g. "authorization=Bearer ..."), not here.
# otlp_endpoint = "http://127.0.0.1:4318"
service_name = "rampart"
# Fraction of new traces recorded (a caller's traceparent decides for the traces it started).
sample_ratio = 1.0

[store]
# Where the embedded SQLite database lives (default: $XDG_DATA_HOME/rampart or
# ~/.local/share/rampart). Prefer RAMPART_DATA_DIR.
# data_dir = "/var/lib/rampart"
# PostgreSQL instead of SQLite; prefer RAMPART_DATABASE_URL (it holds a password).
# database_url = "postgres://rampart:secret@127.0.0.1/rampart"

# Several replicas behind one load balancer, on one PostgreSQL store: Redis makes them one
# deployment (rate limits and failed-login throttling counted across replicas, a revoked
# token refused by every replica at once, a reload run by all). Prefer
# RAMPART_CLUSTER_REDIS_URL. See docs/deploy.md.
# [cluster]
# redis_url = "redis://127.0.0.1:6379/0"
# namespace = "rampart"

[audit]
# One hash-chained record per request: `rampart audit tail | search | verify`.
enabled = true
# JSON lines to a file instead of the store.
# file = "/var/log/rampart/audit.jsonl"
# "closed": refuse calls when the audit log cannot be written; "open": serve anyway.
on_failure = "closed"
# false: a result is released once its record is queued (stored within ~25 ms; a crash
# loses what is still queued). true: a result waits until its record is stored.
synchronous = false
queue_capacity = 4096
# Secret values to mask in records (the auth key always is).
redact = []
# Signed checkpoints: the chain's head signed with an Ed25519 key kept outside the store,
# so that deleting the newest records or rewriting the log is detected
# (`rampart audit verify`, `rampart audit checkpoint`, `rampart audit public-key`).
# The key is generated on the first run (default: audit-signing-key.pem in the data
# directory, its public key beside it); checkpoints go to an append-only file.
# signing_key = "/etc/rampart/audit-signing-key.pem"
# checkpoints = "/var/log/rampart/audit-checkpoints.jsonl"
# Sign after this many records, and at most this many seconds after a record is stored
# (0 turns a trigger off; both 0: no checkpoints).
checkpoint_every = 1000
checkpoint_interval_secs = 60

[limits]
# 0 = unlimited. Per principal: requests per minute (all methods) and tool calls at once.
calls_per_minute = 0
concurrent_calls = 32
# Longest a tool call may run, seconds.
call_timeout_secs = 300
# Failed logins per minute from one address before it gets 429 Too Many Requests.
failed_auth_per_minute = 30
# Seconds a client has to send its request headers (slow-client protection).
header_read_timeout_secs = 10
# Time to send a request body once the headers are in (408 after), seconds.
body_read_timeout_secs = 30
# Tool calls run as tasks (clients of the tasks extension; exec, sql and upstream tools):
# how long each stays observable (seconds; at least call_timeout_secs + 60), and how many
# one principal may hold at once (0 = unlimited).
task_ttl_secs = 900
tasks_per_principal = 64
# A call ending within this many milliseconds is answered directly, not as a task.
task_after_ms = 500
# Per tool, per principal: at most `calls` per `period_secs`.
# [limits.tools.run_command]
# calls = 10
# period_secs = 60

# The filesystem toolbox (add "fs" to tools.enabled). Roles need fs scopes too, e.g.
# [roles.reader] fs = [{ path = "/srv/data/**", access = "read" }].
# [[fs.roots]]
# path = "/srv/data"
# mode = "read"            # or "read-write"

# The SQL toolbox (add "sql" to tools.enabled). Read-only unless `writable`; roles need
# database scopes, e.g. [roles.analyst] databases = [{ name = "analytics" }].
# [sql.databases.analytics]
# url = "postgres://reader@127.0.0.1/analytics"    # or mysql://..., sqlite:///path.db
# password_env = "ANALYTICS_PASSWORD"
# writable = false
# max_rows = 1000
# statement_timeout_ms = 5000

# HTTPS (TLS 1.3 only). With client_ca, every client needs a certificate signed by it,
# and [tls.clients.IDENTITY] maps a certificate (subject CN or SAN) to roles.
# [tls]
# cert = "/etc/rampart/server.pem"
# key = "/etc/rampart/server.key"
# client_ca = "/etc/rampart/clients-ca.pem"
# crls = ["/etc/rampart/clients.crl"]
# [tls.clients."ci-bot.example.com"]
# roles = ["reader"]

# The HTTP APIs toolbox (add "http" to tools.enabled). Credentials are injected from the
# environment and never shown to the agent; roles need http_apis scopes.
# [http.apis.github]
# base_url = "https://api.github.com"
# methods = ["GET"]
# paths = ["/repos/**", "/user"]
# auth = { kind = "bearer", env = "GITHUB_TOKEN" }
# timeout_ms = 10000
# max_response_bytes = 1048576

# Sandboxed command execution (add "exec" to tools.enabled; `rampart sandbox check` shows
# which layers this machine enforces). Roles need command scopes: commands = ["git"].
# [exec]
# programs = { git = "/usr/bin/git", ls = "/bin/ls" }
# interpreters = { python3 = "/usr/bin/python3" }
# require = ["landlock", "seccomp", "namespaces"]
# network = false
# timeout_s = 30

# MCP servers you already run, mounted behind Rampart (the gateway): their tools come
# namespaced (NAME_tool) under the same authentication, roles, limits and audit. Roles
# grant them like any tool: [roles.reader] tools = ["time_*"]. `rampart upstream import
# claude_desktop_config.json` converts a client's list; `rampart upstream list` shows them.
# [upstreams.time]
# command = "uvx"
# args = ["mcp-server-time"]
# env = { TZ = "UTC" }             # values may use ${VAR}; Rampart's own env is not passed
# [upstreams.github]
# url = "https://api.githubcopilot.com/mcp/"
# headers = { Authorization = "Bearer ${GITHUB_TOKEN}" }
# env_file = "upstreams.env"       # secrets for ${VAR}, outside this file
# prefix = "gh_"                   # default "NAME_"; "" for none
# tools.exclude = ["delete_*"]    # and tools.include, tools.rename, tools.descriptions
# start = "eager"                  # wait for it at start (default "lazy": on its first call)
# stateless = false                # true: one session shared by all callers
# pin = true                       # hide a tool whose definition changes until approved

[stdio]
# Who the caller is on stdio: whoever started the process.
principal = "local"
roles = ["admin"]

# The D-Bus transport (server.transport = "dbus", or --transport dbus): org.rampart.Mcp1
# on the session or system bus. Callers are the Unix users the bus vouches for; only the
# users listed here may call, as principal uid:UID with these roles.
# [dbus]
# bus = "session"
# [dbus.users.1000]
# roles = ["reader"]

# Roles: deny by default. Built in: public (system_health), reader (read-only tools),
# writer (reader + write tools), admin (everything). A [roles.NAME] table with a built-in
# name adds to it. Resource scopes are typed: fs paths, commands, databases, HTTP APIs,
# and the kinds a program built on Rampart defines for its own toolboxes (scopes.KIND).
# [roles.analyst]
# includes = ["reader"]
# tools = ["sql_*"]
# databases = [{ name = "analytics", access = "read" }]
# fs = [{ path = "/srv/reports/**", access = "read" }]
# scopes = { notebook = [{ name = "team-*", access = "read-write" }] }

[tools]
# Enabled toolboxes.
enabled = ["system"]

[tools.system]
# IANA zone used when a time tool is called without one (default: the system's).
# local_timezone = "Europe/Paris"
"#;
