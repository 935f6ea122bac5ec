//! The one registry of environment variables Rampart reads. `rampart serve --help` and the
//! README list them from here.

/// How an environment variable's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvVarKind {
    /// Taken as is.
    String,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`).
    Bool,
    /// A non-negative integer.
    Integer,
    /// Comma-separated list.
    List,
    /// Not a configuration key (read by the CLI itself).
    Other,
}

/// One environment variable.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar {
    /// Variable name.
    pub name: &'static str,
    /// The configuration key it sets (dotted path), if any.
    pub key: Option<&'static str>,
    /// How its value is read.
    pub kind: EnvVarKind,
    /// What it does.
    pub doc: &'static str,
}

const fn key(name: &'static str, key: &'static str, kind: EnvVarKind, doc: &'static str) -> EnvVar {
    EnvVar { name, key: Some(key), kind, doc }
}

/// Every `RAMPART_*` variable. Any other `RAMPART_*` variable is an error (a typo would
/// otherwise be silently ignored).
pub const ENV_VARS: &[EnvVar] = &[
    EnvVar {
        name: "RAMPART_CONFIG",
        key: None,
        kind: EnvVarKind::Other,
        doc: "path of rampart.toml (default: ./rampart.toml if present)",
    },
    key("RAMPART_TRANSPORT", "server.transport", EnvVarKind::String, "transport: http or stdio"),
    key("RAMPART_LISTEN", "server.listen", EnvVarKind::String, "HTTP listen address, e.g. 127.0.0.1:8080"),
    key("RAMPART_STATELESS", "server.stateless", EnvVarKind::Bool, "serve streamable HTTP without sessions"),
    key("RAMPART_PROFILE", "server.profile", EnvVarKind::String, "tool profile: default or conformance"),
    key(
        "RAMPART_ALLOWED_HOSTS",
        "server.allowed_hosts",
        EnvVarKind::List,
        "extra accepted Host values, comma-separated",
    ),
    key(
        "RAMPART_ALLOWED_ORIGINS",
        "server.allowed_origins",
        EnvVarKind::List,
        "accepted Origin values, comma-separated",
    ),
    key(
        "RAMPART_INSECURE_NO_AUTH",
        "server.insecure_no_auth",
        EnvVarKind::Bool,
        "allow a non-loopback address without authentication",
    ),
    key("RAMPART_AUTH_KEY", "auth.key", EnvVarKind::String, "static bearer key required on HTTP"),
    key("RAMPART_LOG", "log.level", EnvVarKind::String, "log filter, e.g. info or rampart=debug"),
    key("RAMPART_LOG_FORMAT", "log.format", EnvVarKind::String, "log format: text or json"),
    key(
        "RAMPART_TELEMETRY_OTLP_ENDPOINT",
        "telemetry.otlp_endpoint",
        EnvVarKind::String,
        "export traces to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318",
    ),
    key(
        "RAMPART_TELEMETRY_SERVICE_NAME",
        "telemetry.service_name",
        EnvVarKind::String,
        "service.name of the exported traces (default rampart)",
    ),
    key(
        "RAMPART_METRICS_LISTEN",
        "server.metrics_listen",
        EnvVarKind::String,
        "separate unauthenticated /metrics address",
    ),
    key(
        "RAMPART_LEGACY_SSE",
        "server.legacy_sse",
        EnvVarKind::Bool,
        "also serve the legacy HTTP+SSE transport at /sse (default true)",
    ),
    key(
        "RAMPART_WEBSOCKET",
        "server.websocket",
        EnvVarKind::Bool,
        "also serve MCP over WebSocket at /ws (default true)",
    ),
    key("RAMPART_CONSOLE", "server.console", EnvVarKind::Bool, "serve the web console at /console (default false)"),
    key("RAMPART_TOOLS", "tools.enabled", EnvVarKind::List, "enabled toolboxes, comma-separated"),
    key("RAMPART_DATA_DIR", "store.data_dir", EnvVarKind::String, "directory of the embedded SQLite database"),
    key(
        "RAMPART_DATABASE_URL",
        "store.database_url",
        EnvVarKind::String,
        "postgres://... to use PostgreSQL for the store",
    ),
    key(
        "RAMPART_CLUSTER_REDIS_URL",
        "cluster.redis_url",
        EnvVarKind::String,
        "redis://... shared by the replicas of one deployment (limits, revocations, reloads)",
    ),
    key("RAMPART_AUDIT_FILE", "audit.file", EnvVarKind::String, "write the audit log as JSON lines to this file"),
    EnvVar { name: "RAMPART_URL", key: None, kind: EnvVarKind::Other, doc: "client commands: server URL" },
    EnvVar { name: "RAMPART_TOKEN", key: None, kind: EnvVarKind::Other, doc: "client commands: bearer token" },
];
