//! From configuration to everything `serve` needs, built and validated before anything
//! listens: the store, the policy, the audit log, the security guard, the pipeline with
//! its toolboxes, the credentials and the MCP handler.

use std::{sync::Arc, time::Duration};

use rampart_audit::{
    AuditLog, AuditSink, CheckpointSigner, Checkpointer, Commit, FailurePolicy, JsonlSink, Redactor, public_key_path,
};
use rampart_auth::Authenticator;
use rampart_config::{AuditFailure, Config, Profile};
use rampart_core::{Pipeline, Principal, PrincipalKind, Toolbox, Transport};
use rampart_exec::ExecToolbox;
use rampart_fs::FsToolbox;
use rampart_http::HttpToolbox;
use rampart_mcp::{McpHandler, ServerIdentity, supported_protocol_versions};
use rampart_policy::Policy;
use rampart_sql::SqlToolbox;
use rampart_store::Store;
use rampart_tools::{ConformanceToolbox, SystemInfo, SystemToolbox};

use crate::{
    ServerError, admin::AdminToolbox, audit_store::StoreSink, auth::Credentials, jwt::JwtVerifier, limits::Limits,
    metrics::Metrics, security::SecurityGuard, tokens::TokenService,
};

/// Toolbox names accepted in `tools.enabled`.
pub const KNOWN_TOOLBOXES: &[&str] = &["system", "admin", "fs", "sql", "http", "exec"];

/// Everything built from the configuration.
pub struct Built {
    /// The one call pipeline.
    pub pipeline: Arc<Pipeline>,
    /// HTTP credentials.
    pub credentials: Arc<Credentials>,
    /// API tokens.
    pub tokens: Arc<TokenService>,
    /// The store.
    pub store: Store,
    /// Authorization and audit.
    pub guard: Arc<SecurityGuard>,
    /// The policy.
    pub policy: Arc<Policy>,
    /// The MCP handler (for the configured transport).
    pub handler: McpHandler,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built").field("pipeline", &self.pipeline).finish_non_exhaustive()
    }
}

/// Opens the store named by the configuration (lazily: nothing connects yet).
///
/// # Errors
/// [`ServerError::Store`].
pub fn open_store(config: &Config) -> Result<Store, ServerError> {
    let url = match &config.store.database_url {
        Some(url) => url.expose().to_owned(),
        None => Store::sqlite_url(&config.store.data_dir()),
    };
    Store::open(&url).map_err(|e| ServerError::Store(e.to_string()))
}

/// Validates the roles and compiles the policy.
///
/// # Errors
/// [`ServerError::Policy`].
pub fn build_policy(config: &Config) -> Result<Arc<Policy>, ServerError> {
    let policy = Policy::new(&config.roles).map_err(|e| ServerError::Policy(e.to_string()))?;
    let mut referenced: Vec<String> = config.auth.key_roles.clone();
    referenced.extend(config.stdio.roles.iter().cloned());
    if let Some(basic) = &config.auth.basic {
        referenced.extend(basic.roles.iter().cloned());
    }
    if let Some(roles) = &config.auth.anonymous_roles {
        referenced.extend(roles.iter().cloned());
    }
    let unknown = policy.unknown_roles(&referenced);
    if !unknown.is_empty() {
        return Err(ServerError::Policy(format!(
            "unknown role(s) {} in [auth]/[stdio] (defined: {})",
            unknown.join(", "),
            policy.role_names().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(Arc::new(policy))
}

/// The values the audit log masks: the static key and configured secrets.
pub(crate) fn redactor(config: &Config) -> Redactor {
    let mut secrets: Vec<String> = config.audit.redact.iter().map(|s| s.expose().to_owned()).collect();
    if let Some(key) = &config.auth.key {
        secrets.push(key.expose().to_owned());
    }
    Redactor::new(secrets)
}

pub(crate) async fn start_audit(config: &Config, store: &Store) -> Result<Option<AuditLog>, ServerError> {
    if !config.audit.enabled {
        return Ok(None);
    }
    let sink: Arc<dyn AuditSink> = match &config.audit.file {
        Some(path) => {
            // Its errors name the file.
            Arc::new(JsonlSink::open(path).await.map_err(|e| ServerError::Audit(e.to_string()))?)
        }
        None => Arc::new(StoreSink::new(store.clone())),
    };
    let policy = match config.audit.on_failure {
        AuditFailure::Closed => FailurePolicy::FailClosed,
        AuditFailure::Open => FailurePolicy::FailOpen,
    };
    let commit = if config.audit.synchronous { Commit::Synchronous } else { Commit::Asynchronous };
    let checkpointer = checkpointer(config).await?;
    let log = AuditLog::start(sink, config.audit.queue_capacity, policy)
        .await
        .map_err(|e| ServerError::Audit(e.to_string()))?
        .with_commit(commit);
    Ok(Some(match checkpointer {
        Some(checkpointer) => log.with_checkpoints(checkpointer),
        None => log,
    }))
}

/// The audit writer's signed checkpoints as `[audit]` says: the signing key (generated
/// on the first run), the checkpoint file and the triggers. `None` when both triggers are
/// off.
async fn checkpointer(config: &Config) -> Result<Option<Checkpointer>, ServerError> {
    if !config.audit.checkpoints_enabled() {
        return Ok(None);
    }
    let path = config.audit_signing_key();
    let key = path.clone();
    let (signer, generated) = tokio::task::spawn_blocking(move || CheckpointSigner::load_or_generate(&key))
        .await
        .map_err(|e| ServerError::Audit(e.to_string()))?
        // Its errors name the file.
        .map_err(|e| ServerError::Audit(e.to_string()))?;
    if generated {
        let public_key = public_key_path(&path);
        tracing::info!(path = %path.display(), public_key = %public_key.display(), key_id = signer.key_id(), "generated the audit signing key");
    }
    let checkpointer = Checkpointer::new(signer, config.audit_checkpoints())
        .every(config.audit.checkpoint_every)
        .interval(Duration::from_secs(config.audit.checkpoint_interval_secs));
    Ok(Some(checkpointer))
}

/// The principal of stdio callers.
pub fn stdio_principal(config: &Config) -> Principal {
    Principal {
        id: config.stdio.principal.clone(),
        kind: PrincipalKind::LocalOperator,
        roles: config.stdio.roles.clone(),
    }
}

/// The toolboxes to serve: `tools.enabled` (validated), `admin` always (policy limits it
/// to the admin role), `conformance` under that profile.
fn toolbox_names(config: &Config) -> Result<Vec<String>, ServerError> {
    let mut names: Vec<String> = Vec::new();
    for name in &config.tools.enabled {
        if !KNOWN_TOOLBOXES.contains(&name.as_str()) {
            return Err(ServerError::UnknownToolbox { name: name.clone(), known: KNOWN_TOOLBOXES.join(", ") });
        }
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    if !names.iter().any(|n| n == "admin") {
        names.push("admin".into());
    }
    if config.server.profile == Profile::Conformance {
        names.push("conformance".into());
    }
    Ok(names)
}

fn authenticator(config: &Config) -> Result<Authenticator, ServerError> {
    Authenticator::new(
        config.auth.key.as_ref().map(|k| k.expose()),
        config.auth.basic.as_ref().map(|b| (b.user.as_str(), b.password_hash.expose())),
    )
    .map_err(|e| ServerError::Auth(e.to_string()))
}

/// A toolbox's raw `[section]`, which must be present when the toolbox is enabled.
fn section(name: &str, value: &serde_json::Value) -> Result<serde_json::Value, ServerError> {
    if value.is_null() {
        let hint = match name {
            "fs" => "[[fs.roots]] path = \"...\"",
            "http" => "[http.apis.NAME] base_url = \"...\"",
            "exec" => "[exec] programs = { NAME = \"/path\" }",
            _ => "[sql.databases.NAME] url = \"...\"",
        };
        return Err(ServerError::Toolbox {
            toolbox: name.into(),
            message: format!("enabled in tools.enabled but not configured: add {hint} to rampart.toml"),
        });
    }
    Ok(value.clone())
}

fn fs_toolbox(config: &Config) -> Result<FsToolbox, ServerError> {
    FsToolbox::from_config(section("fs", &config.fs)?)
        .map_err(|e| ServerError::Toolbox { toolbox: "fs".into(), message: e.to_string() })
}

/// Checks everything that can be checked without IO: roles, toolbox names, the Basic
/// hash, the system toolbox's time zone, the store URL's scheme.
///
/// # Errors
/// [`ServerError`] naming the bad setting.
pub fn validate(config: &Config) -> Result<(), ServerError> {
    build_policy(config)?;
    toolbox_names(config)?;
    authenticator(config)?;
    if let Some(jwt) = &config.auth.jwt {
        JwtVerifier::new(jwt).map_err(|e| ServerError::Auth(e.to_string()))?;
    }
    if let Some(tls) = &config.tls {
        crate::tls::acceptor(tls).map_err(|e| ServerError::Tls(e.to_string()))?;
    }
    open_store(config)?;
    let names = toolbox_names(config)?;
    if names.iter().any(|n| n == "fs") {
        fs_toolbox(config)?;
    }
    if names.iter().any(|n| n == "exec") {
        rampart_exec::ExecConfig::from_value(section("exec", &config.exec)?)
            .map_err(|e| ServerError::Toolbox { toolbox: "exec".into(), message: e.to_string() })?;
    }
    if names.iter().any(|n| n == "http") {
        rampart_http::HttpConfig::from_value(section("http", &config.http)?)
            .map_err(|e| ServerError::Toolbox { toolbox: "http".into(), message: e.to_string() })?;
    }
    if names.iter().any(|n| n == "sql") {
        rampart_sql::SqlConfig::from_value(section("sql", &config.sql)?)
            .map_err(|e| ServerError::Toolbox { toolbox: "sql".into(), message: e.to_string() })?;
    }
    SystemToolbox::new(SystemInfo { local_timezone: config.tools.system.local_timezone.clone(), ..Default::default() })
        .map_err(|e| ServerError::Toolbox { toolbox: "system".into(), message: e.to_string() })?;
    Ok(())
}

/// Validates `config` and builds everything.
///
/// # Errors
/// [`ServerError`] naming the bad setting.
pub async fn build(config: &Config, transport: Transport) -> Result<Built, ServerError> {
    let policy = build_policy(config)?;
    let store = open_store(config)?;
    let audit = start_audit(config, &store).await?;
    let limits = Arc::new(Limits::new(&config.limits));
    let guard = Arc::new(SecurityGuard::new(
        policy.clone(),
        limits,
        Arc::new(Metrics::new()),
        audit,
        Arc::new(redactor(config)),
    ));
    let tokens = Arc::new(TokenService::new(store.clone(), policy.clone()));

    let names = toolbox_names(config)?;
    let mut builder = Pipeline::builder().guard(guard.clone());
    for name in &names {
        let toolbox: Arc<dyn Toolbox> = match name.as_str() {
            "system" => Arc::new(
                SystemToolbox::new(SystemInfo {
                    toolboxes: names.clone(),
                    protocol_versions: supported_protocol_versions(),
                    local_timezone: config.tools.system.local_timezone.clone(),
                })
                .map_err(|e| ServerError::Toolbox { toolbox: "system".into(), message: e.to_string() })?,
            ),
            "admin" => Arc::new(AdminToolbox::new(tokens.clone())),
            "fs" => Arc::new(fs_toolbox(config)?),
            "exec" => Arc::new(
                ExecToolbox::from_config(section("exec", &config.exec)?)
                    .map_err(|e| ServerError::Toolbox { toolbox: "exec".into(), message: e.to_string() })?,
            ),
            "http" => Arc::new(
                HttpToolbox::from_config(section("http", &config.http)?)
                    .map_err(|e| ServerError::Toolbox { toolbox: "http".into(), message: e.to_string() })?,
            ),
            "sql" => Arc::new(
                SqlToolbox::from_config(section("sql", &config.sql)?)
                    .map_err(|e| ServerError::Toolbox { toolbox: "sql".into(), message: e.to_string() })?,
            ),
            _ => Arc::new(ConformanceToolbox),
        };
        builder = builder.toolbox(toolbox);
    }
    let pipeline = Arc::new(builder.build().map_err(|e| ServerError::Duplicate(e.to_string()))?);
    let authenticator = authenticator(config)?;
    let jwt = match &config.auth.jwt {
        Some(jwt) => Some(Arc::new(JwtVerifier::new(jwt).map_err(|e| ServerError::Auth(e.to_string()))?)),
        None => None,
    };
    let credentials = Arc::new(Credentials::new(config, authenticator, jwt, tokens.clone(), guard.clone()));
    let identity = ServerIdentity {
        name: "rampart".into(),
        version: rampart_core::VERSION.into(),
        instructions: Some(
            "Rampart serves tools under authentication, policy and audit. Call system_about to see what is enabled."
                .into(),
        ),
    };
    let handler = McpHandler::new(pipeline.clone(), identity, transport).with_stdio_principal(stdio_principal(config));
    Ok(Built { pipeline, credentials, tokens, store, guard, policy, handler })
}
