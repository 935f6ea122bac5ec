//! Layering: defaults < `rampart.toml` < environment (and `.env`) < flags.

use std::path::{Path, PathBuf};

use figment::{
    Figment, Metadata, Profile as FigmentProfile, Provider,
    providers::{Format, Serialized, Toml},
    value::{Dict, Map, Value},
};

use crate::{Config, ENV_VARS, EnvVarKind};

/// The file looked for in the working directory when no path is given.
const DEFAULT_FILE: &str = "rampart.toml";

/// What [`load`] reads.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--config`; when `None`, `RAMPART_CONFIG`, else `./rampart.toml` if it exists.
    pub config_path: Option<PathBuf>,
    /// Flag overrides as (dotted key, value), e.g. `("server.listen", "0.0.0.0:80")`.
    pub overrides: Vec<(&'static str, serde_json::Value)>,
    /// Read `./.env` into the environment first (does not override set variables).
    pub dotenv: bool,
    /// The environment to read, as (name, value). `None`: the process environment.
    pub env: Option<Vec<(String, String)>>,
}

/// A loaded, validated configuration and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// The configuration file that was read, if any.
    pub file: Option<PathBuf>,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named file does not exist or cannot be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// `.env` exists but is malformed.
    #[error("cannot read .env: {0}")]
    Dotenv(String),
    /// A `RAMPART_*` variable is unknown or has a bad value.
    #[error("environment variable {name}: {message}")]
    Env {
        /// Variable name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A key is unknown or a value is invalid; figment's message names the key and the
    /// source (file path, environment, flags).
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Loads the configuration.
///
/// # Errors
/// [`ConfigError`] naming the key and its source.
pub fn load(options: LoadOptions) -> Result<Loaded, ConfigError> {
    if options.dotenv {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(error) if error.not_found() => {}
            Err(error) => return Err(ConfigError::Dotenv(error.to_string())),
        }
    }
    let env: Vec<(String, String)> = options.env.unwrap_or_else(|| std::env::vars().collect());
    let file = config_file(options.config_path, &env)?;
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = &file {
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(Layer { name: "environment", dict: env_layer(&env)? });
    figment = figment.merge(Layer { name: "command-line flags", dict: flags_layer(&options.overrides)? });
    let mut config: Config = figment.extract().map_err(|error| ConfigError::Invalid(describe(error)))?;
    if let Some(dir) = file.as_deref().and_then(Path::parent) {
        anchor_openapi_paths(&mut config.http, dir);
    }
    check_legacy_paths(&config.server)?;
    check_telemetry(&config.telemetry)?;
    if let Some(key) = config.dbus.users.keys().find(|uid| uid.parse::<u32>().is_err()) {
        return Err(ConfigError::Invalid(format!(
            "[dbus.users.{key}]: a Unix user id (a number, as `id -u` prints it) was expected"
        )));
    }
    Ok(Loaded { config, file })
}

/// `[http.apis.NAME] openapi` paths, relative to the configuration file that names them
/// (as a person reads the file), not to whatever directory the server was started in.
fn anchor_openapi_paths(http: &mut serde_json::Value, dir: &Path) {
    let Some(apis) = http.get_mut("apis").and_then(serde_json::Value::as_object_mut) else { return };
    for api in apis.values_mut() {
        if let Some(openapi) = api.get_mut("openapi")
            && let Some(path) = openapi.as_str().map(Path::new)
            && path.is_relative()
        {
            *openapi = serde_json::Value::String(dir.join(path).to_string_lossy().into_owned());
        }
    }
}

/// The legacy HTTP+SSE paths: absolute, distinct, and none of the server's own routes.
fn check_legacy_paths(server: &crate::ServerConfig) -> Result<(), ConfigError> {
    let taken = ["/", "/mcp", "/ws", "/healthz", "/readyz", "/metrics"];
    for (key, path) in [
        ("server.legacy_sse_path", &server.legacy_sse_path),
        ("server.legacy_messages_path", &server.legacy_messages_path),
    ] {
        if !path.starts_with('/') || path.contains(['?', '#', '{', '}']) || taken.contains(&path.trim_end_matches('/'))
        {
            return Err(ConfigError::Invalid(format!(
                "{key} = \"{path}\": a path of its own starting with / (not {})",
                taken.join(", ")
            )));
        }
    }
    if server.legacy_sse_path.trim_end_matches('/') == server.legacy_messages_path.trim_end_matches('/') {
        return Err(ConfigError::Invalid("server.legacy_sse_path and server.legacy_messages_path must differ".into()));
    }
    Ok(())
}

/// `[telemetry]`: an http(s) endpoint, a sampling ratio between 0 and 1.
fn check_telemetry(telemetry: &crate::TelemetryConfig) -> Result<(), ConfigError> {
    if let Some(endpoint) = &telemetry.otlp_endpoint
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        return Err(ConfigError::Invalid(format!(
            "telemetry.otlp_endpoint = \"{endpoint}\": an http:// or https:// URL of an OTLP/HTTP collector \
             was expected, e.g. http://127.0.0.1:4318"
        )));
    }
    if !(0.0..=1.0).contains(&telemetry.sample_ratio) {
        return Err(ConfigError::Invalid(format!(
            "telemetry.sample_ratio = {}: a fraction from 0.0 to 1.0 was expected",
            telemetry.sample_ratio
        )));
    }
    if telemetry.service_name.trim().is_empty() {
        return Err(ConfigError::Invalid("telemetry.service_name must not be empty".into()));
    }
    Ok(())
}

fn config_file(explicit: Option<PathBuf>, env: &[(String, String)]) -> Result<Option<PathBuf>, ConfigError> {
    let from_env = env.iter().find(|(k, _)| k == "RAMPART_CONFIG").map(|(_, v)| PathBuf::from(v));
    match explicit.or(from_env) {
        Some(path) => {
            std::fs::metadata(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
            Ok(Some(path))
        }
        None => Ok(Path::new(DEFAULT_FILE).is_file().then(|| PathBuf::from(DEFAULT_FILE))),
    }
}

fn env_layer(env: &[(String, String)]) -> Result<Dict, ConfigError> {
    let mut dict = Dict::new();
    for (name, raw) in env.iter().filter(|(name, _)| name.starts_with("RAMPART_")) {
        if kubernetes_service_link(name, raw) {
            continue;
        }
        let var = ENV_VARS.iter().find(|v| v.name == name).ok_or_else(|| ConfigError::Env {
            name: name.clone(),
            message: "unknown variable (see `rampart serve --help` for the list)".into(),
        })?;
        let Some(key) = var.key else { continue };
        // `VAR=` is how Compose and shells pass "not set" on (`${VAR:-}`): an empty
        // `RAMPART_AUTH_KEY` must not be a key nobody can present.
        if raw.is_empty() && matches!(var.kind, EnvVarKind::String | EnvVarKind::Other) {
            continue;
        }
        let bad = |message: &str| ConfigError::Env { name: name.clone(), message: message.into() };
        let value = match var.kind {
            EnvVarKind::String | EnvVarKind::Other => Value::from(raw.clone()),
            EnvVarKind::Bool => Value::from(parse_bool(raw).ok_or_else(|| bad("expected true or false"))?),
            EnvVarKind::Integer => Value::from(raw.trim().parse::<u64>().map_err(|_| bad("expected an integer"))?),
            EnvVarKind::List => Value::from(
                raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect::<Vec<_>>(),
            ),
        };
        insert_path(&mut dict, key, value);
    }
    Ok(dict)
}

/// Whether `name=value` is one of the variables Kubernetes puts in every pod of a
/// namespace for a Service named `rampart` ("service links": `RAMPART_SERVICE_HOST`,
/// `RAMPART_PORT=tcp://10.0.0.1:8080`, …), which are not configuration. Matched on the
/// name *and* the value's shape, so that a mistaken `RAMPART_PORT=8080` is still refused.
fn kubernetes_service_link(name: &str, value: &str) -> bool {
    let address = || value.parse::<std::net::IpAddr>().is_ok();
    let port = || value.parse::<u16>().is_ok();
    let url = || {
        ["tcp://", "udp://", "sctp://"]
            .iter()
            .any(|scheme| value.strip_prefix(scheme).is_some_and(|rest| rest.parse::<std::net::SocketAddr>().is_ok()))
    };
    let Some(rest) = name.strip_prefix("RAMPART_") else { return false };
    if rest == "SERVICE_HOST" {
        return address();
    }
    if rest == "SERVICE_PORT" || rest.starts_with("SERVICE_PORT_") {
        return port();
    }
    if rest == "PORT" {
        return url();
    }
    // RAMPART_PORT_8080_TCP[_PROTO|_PORT|_ADDR]
    let Some(rest) = rest.strip_prefix("PORT_") else { return false };
    let mut parts = rest.splitn(3, '_');
    let (Some(number), Some(protocol)) = (parts.next(), parts.next()) else { return false };
    if number.parse::<u16>().is_err() || !matches!(protocol, "TCP" | "UDP" | "SCTP") {
        return false;
    }
    match parts.next() {
        None => url(),
        Some("PROTO") => matches!(value, "tcp" | "udp" | "sctp"),
        Some("PORT") => port(),
        Some("ADDR") => address(),
        Some(_) => false,
    }
}

fn flags_layer(overrides: &[(&'static str, serde_json::Value)]) -> Result<Dict, ConfigError> {
    let mut dict = Dict::new();
    for (key, value) in overrides {
        let value = Value::serialize(value).map_err(|e| ConfigError::Invalid(format!("flag for {key}: {e}")))?;
        insert_path(&mut dict, key, value);
    }
    Ok(dict)
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

fn insert_path(dict: &mut Dict, dotted: &str, value: Value) {
    let mut parts = dotted.split('.').peekable();
    let mut current = dict;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.into(), value);
            return;
        }
        let entry = current.entry(part.into()).or_insert_with(|| Value::from(Dict::new()));
        if !matches!(entry, Value::Dict(..)) {
            *entry = Value::from(Dict::new());
        }
        let Value::Dict(_, next) = entry else { return };
        current = next;
    }
}

fn describe(error: figment::Error) -> String {
    error.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")
}

/// A named in-memory layer, so errors say "in environment" or "in command-line flags".
struct Layer {
    name: &'static str,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    fn data(&self) -> Result<Map<FigmentProfile, Dict>, figment::Error> {
        Ok(FigmentProfile::Default.collect(self.dict.clone()))
    }
}

#[cfg(test)]
mod tests;
