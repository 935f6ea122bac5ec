//! From configuration to everything `serve` needs, built and validated before anything
//! listens: the store, the policy, the audit log, the security guard, the pipeline with
//! its toolboxes (from the registry), the credentials, the MCP handler and the reloader.
//! Also the pipeline a `rampart token` command calls its `admin` tool through.

use std::{sync::Arc, time::Duration};

use rampart_audit::{
    AuditLog, AuditSink, CheckpointSigner, Checkpointer, Commit, FailurePolicy, JsonlSink, Redactor, public_key_path,
};
use rampart_auth::Authenticator;
use rampart_config::{AuditFailure, Config, LoadOptions};
use rampart_core::{
    CallContext, CallError, Caller, Catalog, Pipeline, Principal, PrincipalKind, ToolOutput, Transport,
};
use rampart_mcp::{McpHandler, ServerIdentity, TaskSettings};
use rampart_policy::Policy;
use rampart_store::Store;
use serde_json::{Map, Value};

use crate::{
    Cluster, ServerError,
    admin::ReloadHandle,
    audit_store::StoreSink,
    auth::Credentials,
    jwt::JwtVerifier,
    limits::Limits,
    metrics::Metrics,
    registry::{self, BuiltToolbox, ToolboxFactory},
    reload::Reloader,
    security::{GuardState, SecurityGuard},
    tokens::TokenService,
};

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
    /// The MCP handler (for the configured transport).
    pub handler: McpHandler,
    /// Applies a changed configuration to the running server (`SIGHUP`,
    /// `admin_config_reload`).
    pub reloader: Arc<Reloader>,
    /// The deployment's shared state (`[cluster]`), if any.
    pub cluster: Option<Arc<Cluster>>,
}

impl Built {
    /// Waits until the audit log has read its chain's head (at once without an audit log).
    ///
    /// # Errors
    /// [`ServerError::Audit`] when the last record was edited: the server must not serve.
    pub async fn audit_ready(&self) -> Result<(), ServerError> {
        audit_ready(self.guard.audit()).await
    }
}

/// Waits until `audit`, if any, has read its chain's head ([`AuditLog::ready`]).
///
/// # Errors
/// [`ServerError::Audit`] when the last record was edited.
async fn audit_ready(audit: Option<&AuditLog>) -> Result<(), ServerError> {
    match audit {
        Some(audit) => audit.ready().await.map_err(|e| ServerError::Audit(e.to_string())),
        None => Ok(()),
    }
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

/// What a reload may swap in the guard, from `config` (whose roles are `policy`).
pub(crate) fn guard_state(config: &Config, policy: Arc<Policy>, cluster: Option<Arc<Cluster>>) -> GuardState {
    GuardState { policy, limits: Arc::new(Limits::new(&config.limits, cluster)), redactor: Arc::new(redactor(config)) }
}

/// The deployment's Redis, when `[cluster] redis_url` names one.
///
/// # Errors
/// [`ServerError::Cluster`] when it does not answer.
pub(crate) async fn connect_cluster(config: &Config) -> Result<Option<Arc<Cluster>>, ServerError> {
    match &config.cluster.redis_url {
        Some(url) => Ok(Some(Cluster::connect(url.expose(), &config.cluster.namespace).await?)),
        None => Ok(None),
    }
}

/// The hash chain this process writes in the store: in a cluster on PostgreSQL, one of
/// its own, named after the host (a pod's name) and made unique per start, so that
/// replicas never contend on one chain's head; otherwise the default chain (`""`), which
/// `rampart token` commands and single servers share.
pub(crate) fn audit_chain(config: &Config, store: &Store) -> String {
    if config.cluster.redis_url.is_none() || store.backend() != rampart_store::Backend::Postgres {
        return String::new();
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|host| {
            host.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.').take(48).collect()
        })
        .filter(|host: &String| !host.is_empty())
        .unwrap_or_else(|| "replica".to_owned());
    let unique = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &unique[..8])
}

/// The audit log `config` asks for, writing `chain` when it goes to the store. Its writer
/// reads the chain's head in the background: wait on [`AuditLog::ready`] before relying on
/// it (the pipeline does before every call).
pub(crate) async fn start_audit(config: &Config, store: &Store, chain: &str) -> Result<Option<AuditLog>, ServerError> {
    if !config.audit.enabled {
        return Ok(None);
    }
    let sink: Arc<dyn AuditSink> = match &config.audit.file {
        Some(path) => {
            // Its errors name the file.
            Arc::new(JsonlSink::open(path).await.map_err(|e| ServerError::Audit(e.to_string()))?)
        }
        None => Arc::new(StoreSink::new(store.clone()).on_chain(chain)),
    };
    let chain = if config.audit.file.is_some() { "" } else { chain };
    let policy = match config.audit.on_failure {
        AuditFailure::Closed => FailurePolicy::FailClosed,
        AuditFailure::Open => FailurePolicy::FailOpen,
    };
    let commit = if config.audit.synchronous { Commit::Synchronous } else { Commit::Asynchronous };
    let checkpointer = checkpointer(config).await?.map(|checkpointer| checkpointer.for_chain(chain));
    if !chain.is_empty() {
        tracing::info!(chain, "this replica's audit records go to a hash chain of its own");
    }
    let log = AuditLog::spawn(sink, config.audit.queue_capacity, policy)
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

/// The principal of stdio callers, and of `rampart` commands and signals on the server's
/// machine: the local operator (`[stdio]`).
pub fn stdio_principal(config: &Config) -> Principal {
    Principal {
        id: config.stdio.principal.clone(),
        kind: PrincipalKind::LocalOperator,
        roles: config.stdio.roles.clone(),
    }
}

fn authenticator(config: &Config) -> Result<Authenticator, ServerError> {
    Authenticator::new(
        config.auth.key.as_ref().map(|k| k.expose()),
        config.auth.basic.as_ref().map(|b| (b.user.as_str(), b.password_hash.expose())),
    )
    .map_err(|e| ServerError::Auth(e.to_string()))
}

/// Checks everything that can be checked before serving: roles, toolbox names and
/// settings, the Basic hash, JWT and TLS settings, the store URL's scheme. Returns what
/// is configured but unused (a warning; an error for `config check --strict`).
///
/// # Errors
/// [`ServerError`] naming the bad setting.
pub fn validate(config: &Config, added: &[ToolboxFactory]) -> Result<Vec<String>, ServerError> {
    build_policy(config)?;
    registry::validate(config, added)?;
    crate::proxies::TrustedProxies::parse(&config.server.trusted_proxies).map_err(ServerError::Config)?;
    authenticator(config)?;
    if let Some(jwt) = &config.auth.jwt {
        JwtVerifier::new(jwt).map_err(|e| ServerError::Auth(e.to_string()))?;
    }
    if let Some(tls) = &config.tls {
        crate::tls::acceptor(tls).map_err(|e| ServerError::Tls(e.to_string()))?;
    }
    open_store(config)?;
    Ok(registry::unused_sections(config))
}

/// Validates `config` and builds everything, the toolboxes `added` by the embedding
/// program included; `options` say how `config` was loaded, so that a reload reads the
/// same sources again.
///
/// # Errors
/// [`ServerError`] naming the bad setting.
pub async fn build(
    config: &Config,
    transport: Transport,
    options: LoadOptions,
    added: Vec<ToolboxFactory>,
) -> Result<Built, ServerError> {
    // Everything below validates what it builds (each toolbox once); only warnings are
    // left to say.
    for warning in registry::unused_sections(config) {
        tracing::warn!("{warning}");
    }
    let policy = build_policy(config)?;
    let store = open_store(config)?;
    let cluster = connect_cluster(config).await?;
    let audit = start_audit(config, &store, &audit_chain(config, &store)).await?;
    let state = guard_state(config, policy.clone(), cluster.clone());
    let guard = Arc::new(SecurityGuard::new(state, Arc::new(Metrics::new()), audit));
    let tokens = Arc::new(TokenService::new(store.clone(), policy).with_cluster(cluster.clone()));
    let reload = Arc::new(ReloadHandle::default());
    let services = registry::Services {
        cluster: cluster.clone(),
        added,
        tokens: tokens.clone(),
        reload: reload.clone(),
        pins: crate::upstreams::StorePins::shared(store.clone(), &guard),
        config_dir: options.config_path.as_deref().and_then(std::path::Path::parent).map(std::path::Path::to_path_buf),
    };
    let toolboxes = registry::build(config, &services, &[])?;
    let pipeline = pipeline(guard.clone(), &toolboxes).await?;
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
    let handler = McpHandler::new(pipeline.clone(), identity, transport)
        .with_stdio_principal(stdio_principal(config))
        .with_task_settings(task_settings(&config.limits));
    let reloader =
        Arc::new(Reloader::new(options, config.clone(), toolboxes, pipeline.clone(), guard.clone(), services));
    reload.set(&reloader);
    Ok(Built { pipeline, credentials, tokens, store, guard, handler, reloader, cluster })
}

/// How tasks are kept: `[limits] task_ttl_secs` (never below the call timeout + 60 s,
/// so a call is stopped and recorded by its own timeout before its task expires) and
/// `tasks_per_principal`.
fn task_settings(limits: &rampart_config::LimitsConfig) -> TaskSettings {
    let floor = if limits.call_timeout_secs > 0 { limits.call_timeout_secs.saturating_add(60) } else { 0 };
    TaskSettings {
        ttl: Duration::from_secs(limits.task_ttl_secs.max(floor).max(1)),
        per_principal: usize::try_from(limits.tasks_per_principal).unwrap_or(usize::MAX),
        answer_within: Duration::from_millis(limits.task_after_ms),
        ..TaskSettings::default()
    }
}

/// The pipeline over `toolboxes`, guarded by `guard`.
async fn pipeline(guard: Arc<SecurityGuard>, toolboxes: &[BuiltToolbox]) -> Result<Arc<Pipeline>, ServerError> {
    let catalog = catalog(toolboxes).await?;
    let pipeline = Pipeline::builder(guard).build().await.map_err(|e| ServerError::Duplicate(e.to_string()))?;
    pipeline.update_catalog().await.install(catalog);
    Ok(pipeline)
}

/// The catalog of `toolboxes`.
pub(crate) async fn catalog(toolboxes: &[BuiltToolbox]) -> Result<Catalog, ServerError> {
    Catalog::collect(toolboxes.iter().map(|built| built.toolbox.clone()).collect())
        .await
        .map_err(|e| ServerError::Duplicate(e.to_string()))
}

/// The `admin` tools on the local store, for a `rampart token` command: the same
/// pipeline, policy, limits and audit log as the server's, with the command's operator
/// (`[stdio]` principal and roles) as the caller, so that a command is authorized,
/// admitted and recorded by the same code as an MCP call. Every record is stored before
/// its result is returned (synchronous commit): a command whose record cannot be written
/// returns no result.
pub struct LocalAdmin {
    pipeline: Arc<Pipeline>,
    guard: Arc<SecurityGuard>,
    store: Store,
    caller: Caller,
}

impl std::fmt::Debug for LocalAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAdmin").field("caller", &self.caller.principal.id).finish_non_exhaustive()
    }
}

impl LocalAdmin {
    /// Opens the store and the audit log `config` names (the store's table, or
    /// `[audit] file`), with its failure policy.
    ///
    /// # Errors
    /// [`ServerError::Audit`] when the log cannot be opened (unreadable, or its last record
    /// edited) and it fails closed: the command must not run unrecorded. Failing open,
    /// the command runs and a warning says it is not recorded. [`ServerError`] for a bad
    /// configuration.
    pub async fn open(config: &Config) -> Result<Self, ServerError> {
        let policy = build_policy(config)?;
        let store = open_store(config)?;
        let started = match start_audit(config, &store, "").await {
            Ok(log) => audit_ready(log.as_ref()).await.map(|()| log),
            error => error,
        };
        let audit = match started {
            Ok(log) => log.map(|log| log.with_commit(Commit::Synchronous)),
            Err(error) if config.audit.on_failure == AuditFailure::Open => {
                tracing::warn!(%error, "this command is not recorded in the audit log (audit failure policy: fail open)");
                None
            }
            Err(error) => return Err(error),
        };
        // A revocation made here reaches every replica's cache at once — when Redis
        // answers: a token command must not need it (the store is what it changes), so
        // without it the other replicas forget the token within their cache's 2 s.
        let cluster = connect_cluster(config).await.unwrap_or_else(|error| {
            tracing::warn!(%error, "the other replicas are told of revocations within 2 s, not at once");
            None
        });
        let state = guard_state(config, policy.clone(), None);
        let guard = Arc::new(SecurityGuard::new(state, Arc::new(Metrics::new()), audit));
        let tokens = Arc::new(TokenService::new(store.clone(), policy).with_cluster(cluster));
        let admin = registry::TOOLBOXES.iter().filter(|kind| kind.name == "admin");
        let context =
            registry::BuildContext { names: &["admin".into()], tokens: &tokens, reload: &Arc::default(), pins: None };
        let mut toolboxes = Vec::new();
        for kind in admin {
            let toolbox = (kind.build)(Value::Null, &context)
                .map_err(|message| ServerError::Toolbox { toolbox: kind.name.into(), message })?;
            toolboxes.push(BuiltToolbox { name: kind.name.to_owned(), settings: Value::Null, toolbox, upstream: None });
        }
        let pipeline = pipeline(guard.clone(), &toolboxes).await?;
        Ok(Self { pipeline, guard, store, caller: Caller::cli(stdio_principal(config)) })
    }

    /// Calls the `admin` tool `tool` with `arguments` through the pipeline.
    ///
    /// # Errors
    /// [`CallError`]: refused (audit unavailable: the result is withheld), or unknown
    /// (the operator's roles do not grant the tool).
    pub async fn call(&self, tool: &str, arguments: Map<String, Value>) -> Result<ToolOutput, CallError> {
        let context = CallContext::detached(self.caller.clone(), self.pipeline.guard().clone());
        self.pipeline.call_tool(tool, Some(arguments), &context).await
    }

    /// Stores what was recorded and closes the store.
    pub async fn close(self) {
        if let Some(audit) = self.guard.audit()
            && let Err(error) = audit.drain(AuditLog::DEFAULT_DRAIN_GRACE).await
        {
            tracing::error!(%error, "audit records of this command not stored");
        }
        self.store.close().await;
    }
}
