//! Configuration reload: `SIGHUP`, or `rampart config reload` through the
//! `admin_config_reload` tool, re-reads the configuration from the sources it was loaded
//! from (file, environment, flags). A valid new configuration applies at once — roles,
//! limits, audit redaction and toolbox settings — and sessions are told what changed for
//! them (`list_changed`); an invalid one is refused with the same errors as
//! `rampart config check` and the running one keeps serving. Settings that cannot change
//! in a running server (its address, TLS files, authentication, the store, the audit
//! log's destination) are named in the refusal, and nothing is applied.

use std::{fmt, sync::Arc};

use rampart_config::{Config, LoadOptions, load};
use rampart_core::Pipeline;
use rampart_gateway::UpstreamToolbox;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::{
    registry::{self, BuiltToolbox, Services},
    security::SecurityGuard,
    setup,
};

/// Why a reload was refused; the running configuration stays in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// The new configuration does not load or validate: the message is what
    /// `rampart config check` says.
    #[error("the new configuration is not valid, so the running one stays: {0}")]
    Invalid(String),
    /// Settings that only a restart applies changed.
    #[error(
        "these settings cannot change while the server runs: {}; restart to apply them (nothing was changed)",
        .0.join(", ")
    )]
    NotLive(Vec<String>),
}

/// What a reload applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ReloadReport {
    /// The sections whose settings changed, e.g. `roles`, `limits`, `fs`.
    pub changed: Vec<String>,
    /// The toolboxes built anew (the others kept running as they were).
    pub rebuilt: Vec<String>,
    /// Tools served now.
    pub tools: usize,
}

impl fmt::Display for ReloadReport {
    /// `configuration reloaded: roles, fs changed; rebuilt fs; 12 tools`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changed.is_empty() {
            return write!(f, "configuration reloaded: nothing changed; {} tools", self.tools);
        }
        write!(f, "configuration reloaded: {} changed", self.changed.join(", "))?;
        if !self.rebuilt.is_empty() {
            write!(f, "; rebuilt {}", self.rebuilt.join(", "))?;
        }
        write!(f, "; {} tools", self.tools)
    }
}

/// The configuration in force, and the toolboxes built from it.
struct Running {
    config: Config,
    toolboxes: Vec<BuiltToolbox>,
}

/// Applies changed configuration to a running server.
pub struct Reloader {
    options: LoadOptions,
    running: tokio::sync::Mutex<Running>,
    pipeline: Arc<Pipeline>,
    guard: Arc<SecurityGuard>,
    services: Services,
}

impl fmt::Debug for Reloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloader").field("options", &self.options).finish_non_exhaustive()
    }
}

/// The sections a reload applies; any other change is refused.
const LIVE_SECTIONS: &[&str] = &["roles", "limits", "tools", "fs", "sql", "http", "exec", "upstreams"];

impl Reloader {
    /// A reloader for a server built from `config` (loaded with `options`).
    pub(crate) fn new(
        options: LoadOptions,
        config: Config,
        toolboxes: Vec<BuiltToolbox>,
        pipeline: Arc<Pipeline>,
        guard: Arc<SecurityGuard>,
        services: Services,
    ) -> Self {
        let running = tokio::sync::Mutex::new(Running { config, toolboxes });
        Self { options, running, pipeline, guard, services }
    }

    /// The upstream MCP servers mounted now, in configuration order.
    pub(crate) async fn upstreams(&self) -> Vec<Arc<UpstreamToolbox>> {
        self.running.lock().await.toolboxes.iter().filter_map(|built| built.upstream.clone()).collect()
    }

    /// Reads the configuration again and applies it, all of it or nothing.
    ///
    /// # Errors
    /// [`ReloadError`]; the running configuration stays.
    pub async fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let report = self.apply().await?;
        if let Some(cluster) = &self.services.cluster {
            cluster.publish(crate::ClusterEvent::Reload).await;
        }
        Ok(report)
    }

    /// Reloads because another replica of the cluster did (its configuration file is
    /// this one's, e.g. one ConfigMap): the same as [`Reloader::reload`], told to no one.
    ///
    /// # Errors
    /// [`ReloadError`]; the running configuration stays.
    pub async fn reload_for_cluster(&self) -> Result<ReloadReport, ReloadError> {
        self.apply().await
    }

    async fn apply(&self) -> Result<ReloadReport, ReloadError> {
        let mut running = self.running.lock().await;
        let config = load(self.options.clone()).map_err(|e| ReloadError::Invalid(e.to_string()))?.config;
        let fixed = fixed_changes(&running.config, &config);
        if !fixed.is_empty() {
            return Err(ReloadError::NotLive(fixed));
        }
        // What may change is validated by building it (the roles, each changed toolbox once),
        // with the errors `config check` gives; what may not was valid at start.
        let policy = setup::build_policy(&config).map_err(|e| ReloadError::Invalid(e.to_string()))?;
        for warning in registry::unused_sections(&config) {
            tracing::warn!("{warning}");
        }
        let toolboxes = registry::build(&config, &self.services, &running.toolboxes)
            .map_err(|e| ReloadError::Invalid(e.to_string()))?;
        // From collecting the new catalog to installing it, no toolbox's own change runs.
        let update = self.pipeline.update_catalog().await;
        let catalog = setup::catalog(&toolboxes).await.map_err(|e| ReloadError::Invalid(e.to_string()))?;
        let mut state = setup::guard_state(&config, policy.clone(), self.services.cluster.clone());
        if config.limits == running.config.limits {
            // Unchanged limits keep their counters.
            state.limits = self.guard.limits();
        }
        let report = ReloadReport {
            changed: changed_sections(&running.config, &config),
            rebuilt: toolboxes
                .iter()
                .filter(|new| !running.toolboxes.iter().any(|old| Arc::ptr_eq(&old.toolbox, &new.toolbox)))
                .map(|built| built.name.to_owned())
                .collect(),
            tools: catalog.tools().count(),
        };
        // Everything is built and valid: put it in force.
        self.guard.replace(state);
        self.services.tokens.replace_policy(policy);
        update.install(catalog);
        *running = Running { config, toolboxes };
        tracing::info!("{report}");
        Ok(report)
    }
}

/// The top-level sections of `old` and `new` that differ, in file order.
fn changed_sections(old: &Config, new: &Config) -> Vec<String> {
    let (old, new) = (as_json(old), as_json(new));
    let keys: Vec<&String> = new.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    let mut changed: Vec<String> = keys.into_iter().filter(|key| old.get(*key) != new.get(*key)).cloned().collect();
    for key in old.as_object().map(|o| o.keys().collect::<Vec<_>>()).unwrap_or_default() {
        if new.get(key).is_none() && !changed.contains(key) {
            changed.push(key.clone());
        }
    }
    changed
}

/// The settings outside [`LIVE_SECTIONS`] (and `audit.redact`) that differ, as dotted
/// keys (`server.listen`); a section whose difference is in a secret, which prints as
/// `***`, by its name.
fn fixed_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut changes = Vec::new();
    let (mut old_json, mut new_json) = (as_json(old), as_json(new));
    for json in [&mut old_json, &mut new_json] {
        if let Some(sections) = json.as_object_mut() {
            sections.retain(|key, _| !LIVE_SECTIONS.contains(&key.as_str()));
            if let Some(audit) = sections.get_mut("audit").and_then(Value::as_object_mut) {
                audit.remove("redact");
            }
        }
    }
    diff("", &old_json, &new_json, &mut changes);
    // The sections with a `Secret` (`auth.key`, `auth.basic.password_hash`,
    // `store.database_url`); `audit.redact` is live.
    let secret_sections =
        [("auth", old.auth != new.auth), ("store", old.store != new.store), ("cluster", old.cluster != new.cluster)];
    for (section, differs) in secret_sections {
        if differs && !changes.iter().any(|change| change.starts_with(section)) {
            changes.push(format!("{section} (a secret)"));
        }
    }
    changes
}

/// Appends to `out` the dotted paths under `path` where `old` and `new` differ.
fn diff(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let added = new.keys().filter(|key| !old.contains_key(*key));
            for key in old.keys().chain(added) {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                diff(&child, old.get(key).unwrap_or(&Value::Null), new.get(key).unwrap_or(&Value::Null), out);
            }
        }
        (old, new) if old != new => out.push(path.to_owned()),
        _ => {}
    }
}

fn as_json(config: &Config) -> Value {
    serde_json::to_value(config).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        let dir = std::env::temp_dir().join(format!("rampart-reload-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let file = dir.join("rampart.toml");
        std::fs::write(&file, toml).unwrap_or_default();
        let options =
            LoadOptions { config_path: Some(file), overrides: Vec::new(), dotenv: false, env: Some(Vec::new()) };
        let loaded = load(options).map(|loaded| loaded.config).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    }

    #[test]
    fn only_settings_a_running_server_can_take_are_reloaded() {
        let old = config("[server]\nlisten = \"127.0.0.1:8080\"\n");
        let cases = [
            ("[server]\nlisten = \"127.0.0.1:8080\"\n[roles.x]\ntools = [\"a\"]\n", vec![]),
            ("[server]\nlisten = \"127.0.0.1:9090\"\n", vec!["server.listen"]),
            ("[server]\nlisten = \"127.0.0.1:8080\"\n[limits]\ncalls_per_minute = 5\n", vec![]),
            ("[server]\nlisten = \"127.0.0.1:8080\"\n[audit]\nredact = [\"abcdefgh\"]\n", vec![]),
            ("[server]\nlisten = \"127.0.0.1:8080\"\n[audit]\nsynchronous = true\n", vec!["audit.synchronous"]),
            ("[server]\nlisten = \"127.0.0.1:8080\"\n[auth]\nkey = \"a-new-static-key-1234\"\n", vec!["auth.key"]),
        ];
        for (toml, expected) in cases {
            assert_eq!(fixed_changes(&old, &config(toml)), expected, "{toml}");
        }
    }

    #[test]
    fn the_report_names_the_changed_sections() {
        let old = config("");
        let new = config("[roles.x]\ntools = [\"a\"]\n[limits]\ncalls_per_minute = 5\n");
        assert_eq!(changed_sections(&old, &new), ["roles", "limits"]);
    }
}
