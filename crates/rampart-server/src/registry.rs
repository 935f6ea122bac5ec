//! The one table of toolboxes: each one's name, the configuration it is built from, how
//! to validate it and how to build it. Start-up, `config check` and reloads all read this
//! table; adding a toolbox is one entry here.

use std::sync::Arc;

use rampart_config::{Config, Profile};
use rampart_core::Toolbox;
use rampart_exec::ExecToolbox;
use rampart_fs::FsToolbox;
use rampart_gateway::{PinStore, UpstreamConfig, UpstreamToolbox, parse_upstreams};
use rampart_http::HttpToolbox;
use rampart_mcp::supported_protocol_versions;
use rampart_sql::SqlToolbox;
use rampart_tools::{ConformanceToolbox, SystemInfo, SystemToolbox};
use serde_json::{Value, json};

use crate::{
    ServerError,
    admin::{AdminToolbox, ReloadHandle},
    tokens::TokenService,
};

/// The running server's services that toolboxes are built over (kept by the reloader to
/// build them again).
pub(crate) struct Services {
    pub(crate) tokens: Arc<TokenService>,
    pub(crate) reload: Arc<ReloadHandle>,
    pub(crate) pins: Arc<dyn PinStore>,
    /// The directory of the configuration file given with `--config`: relative paths of
    /// upstreams (`env_file`, `cwd`) start there (else in the working directory).
    pub(crate) config_dir: Option<std::path::PathBuf>,
}

/// What building a toolbox may use besides its settings.
pub(crate) struct BuildContext<'a> {
    /// The toolboxes being built, in order (for `system_about`).
    pub(crate) names: &'a [&'static str],
    pub(crate) tokens: &'a Arc<TokenService>,
    pub(crate) reload: &'a Arc<ReloadHandle>,
    /// Where upstreams pin their tool definitions (none: pinning off).
    pub(crate) pins: Option<Arc<dyn PinStore>>,
}

/// One kind of toolbox.
pub(crate) struct ToolboxKind {
    /// Its name in `tools.enabled`.
    pub(crate) name: &'static str,
    /// How it is switched on.
    pub(crate) enabled: Enabled,
    /// The part of the configuration it is built from (its section; `Null`: none). A
    /// reload rebuilds the toolbox when this changed (and keeps the running one, with its
    /// state, when not). `validate` and `build` are handed it.
    pub(crate) settings: fn(&Config) -> Value,
    /// For a toolbox with a section of its own: what to add to `rampart.toml` when it is
    /// enabled without one.
    pub(crate) section_hint: Option<&'static str>,
    /// Checks its settings without building it (for `config check`).
    pub(crate) validate: fn(Value) -> Result<(), String>,
    /// Builds it from its settings.
    pub(crate) build: Build,
}

/// A toolbox's constructor: its settings and the context to the toolbox, or why not.
pub(crate) type Build = fn(Value, &BuildContext<'_>) -> Result<Arc<dyn Toolbox>, String>;

/// How a toolbox is switched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enabled {
    /// When named in `tools.enabled`.
    ByConfig,
    /// Always (the policy limits it to the `admin` role).
    Always,
    /// Under `--profile conformance` only.
    ConformanceProfile,
}

fn no_settings(_: &Config) -> Value {
    Value::Null
}

fn nothing_to_validate(_: Value) -> Result<(), String> {
    Ok(())
}

/// A built toolbox, or its constructor's error as text.
fn boxed<T: Toolbox, E: std::fmt::Display>(built: Result<T, E>) -> Result<Arc<dyn Toolbox>, String> {
    built.map(|toolbox| Arc::new(toolbox) as Arc<dyn Toolbox>).map_err(|error| error.to_string())
}

/// The `system` toolbox's settings: `tools.enabled` (`system_about` lists the toolboxes)
/// and `[tools.system]`.
fn system_settings(config: &Config) -> Value {
    json!({ "enabled": config.tools.enabled, "system": config.tools.system })
}

fn system(settings: Value, toolboxes: Vec<String>) -> Result<SystemToolbox, String> {
    let local_timezone = settings["system"]["local_timezone"].as_str().map(str::to_owned);
    let info = SystemInfo { toolboxes, protocol_versions: supported_protocol_versions(), local_timezone };
    SystemToolbox::new(info).map_err(|error| error.to_string())
}

/// Every toolbox Rampart has, in the order they are served.
pub(crate) const TOOLBOXES: &[ToolboxKind] = &[
    ToolboxKind {
        name: "system",
        enabled: Enabled::ByConfig,
        settings: system_settings,
        section_hint: None,
        validate: |settings| system(settings, Vec::new()).map(drop),
        build: |settings, context| {
            boxed(system(settings, context.names.iter().map(|name| (*name).to_owned()).collect()))
        },
    },
    ToolboxKind {
        name: "admin",
        enabled: Enabled::Always,
        settings: no_settings,
        section_hint: None,
        validate: nothing_to_validate,
        build: |_, context| Ok(Arc::new(AdminToolbox::new(context.tokens.clone(), context.reload.clone()))),
    },
    ToolboxKind {
        name: "fs",
        enabled: Enabled::ByConfig,
        settings: |config| config.fs.clone(),
        section_hint: Some("[[fs.roots]] path = \"...\""),
        validate: |settings| FsToolbox::from_config(settings).map(drop).map_err(|e| e.to_string()),
        build: |settings, _| boxed(FsToolbox::from_config(settings)),
    },
    ToolboxKind {
        name: "sql",
        enabled: Enabled::ByConfig,
        settings: |config| config.sql.clone(),
        section_hint: Some("[sql.databases.NAME] url = \"...\""),
        validate: |settings| rampart_sql::SqlConfig::from_value(settings).map(drop).map_err(|e| e.to_string()),
        build: |settings, _| boxed(SqlToolbox::from_config(settings)),
    },
    ToolboxKind {
        name: "http",
        enabled: Enabled::ByConfig,
        settings: |config| config.http.clone(),
        section_hint: Some("[http.apis.NAME] base_url = \"...\""),
        validate: |settings| rampart_http::HttpConfig::from_value(settings).map(drop).map_err(|e| e.to_string()),
        build: |settings, _| boxed(HttpToolbox::from_config(settings)),
    },
    ToolboxKind {
        name: "exec",
        enabled: Enabled::ByConfig,
        settings: |config| config.exec.clone(),
        section_hint: Some("[exec] programs = { NAME = \"/path\" }"),
        validate: |settings| rampart_exec::ExecConfig::from_value(settings).map(drop).map_err(|e| e.to_string()),
        build: |settings, _| boxed(ExecToolbox::from_config(settings)),
    },
    ToolboxKind {
        name: "conformance",
        enabled: Enabled::ConformanceProfile,
        settings: no_settings,
        section_hint: None,
        validate: nothing_to_validate,
        build: |_, _| Ok(Arc::new(ConformanceToolbox::default())),
    },
];

/// Toolbox names accepted in `tools.enabled`.
fn known_toolboxes() -> impl Iterator<Item = &'static str> {
    TOOLBOXES.iter().filter(|kind| kind.enabled != Enabled::ConformanceProfile).map(|kind| kind.name)
}

fn known() -> String {
    known_toolboxes().collect::<Vec<_>>().join(", ")
}

/// The toolboxes `config` switches on, in serving order.
///
/// # Errors
/// [`ServerError::UnknownToolbox`] for a name in `tools.enabled` that is not one.
pub(crate) fn active(config: &Config) -> Result<Vec<&'static ToolboxKind>, ServerError> {
    if let Some(unknown) = config.tools.enabled.iter().find(|name| !known_toolboxes().any(|known| known == *name)) {
        return Err(ServerError::UnknownToolbox { name: unknown.clone(), known: known() });
    }
    Ok(TOOLBOXES
        .iter()
        .filter(|kind| match kind.enabled {
            Enabled::ByConfig => config.tools.enabled.iter().any(|name| name == kind.name),
            Enabled::Always => true,
            Enabled::ConformanceProfile => config.server.profile == Profile::Conformance,
        })
        .collect())
}

impl ToolboxKind {
    /// Its settings from `config`, refused when it needs a section and has none.
    fn settings_in(&self, config: &Config) -> Result<Value, ServerError> {
        let settings = (self.settings)(config);
        match self.section_hint {
            Some(hint) if settings.is_null() => {
                Err(self.error(format!("enabled in tools.enabled but not configured: add {hint} to rampart.toml")))
            }
            _ => Ok(settings),
        }
    }

    fn error(&self, message: String) -> ServerError {
        ServerError::Toolbox { toolbox: self.name.into(), message }
    }
}

/// Checks the settings of every toolbox `config` switches on (a section they need is
/// present and valid), without building anything.
///
/// # Errors
/// [`ServerError::UnknownToolbox`], [`ServerError::Toolbox`] naming the toolbox.
pub(crate) fn validate(config: &Config) -> Result<(), ServerError> {
    for kind in active(config)? {
        (kind.validate)(kind.settings_in(config)?).map_err(|message| kind.error(message))?;
    }
    for (name, upstream) in upstreams(config)? {
        // `${VAR}`s must resolve; a relative env_file is checked when the server builds
        // the upstream (it depends on where the configuration file is).
        if upstream.env_file.as_deref().is_none_or(std::path::Path::is_absolute) {
            upstream.resolve(None).map_err(|message| upstream_error(&name, message))?;
        }
    }
    Ok(())
}

/// The `[upstreams.NAME]` tables.
fn upstreams(config: &Config) -> Result<Vec<(String, UpstreamConfig)>, ServerError> {
    let upstreams = parse_upstreams(&config.upstreams)
        .map_err(|error| ServerError::Toolbox { toolbox: "upstreams".into(), message: error.to_string() })?;
    Ok(upstreams.into_iter().collect())
}

fn upstream_error(name: &str, message: String) -> ServerError {
    ServerError::Toolbox { toolbox: format!("upstream:{name}"), message }
}

/// What `config` sets up but does not use: a toolbox's section without the toolbox in
/// `tools.enabled` (e.g. `[[fs.roots]]` without `"fs"`), which does nothing. A warning at
/// start, an error for `rampart config check --strict`.
pub(crate) fn unused_sections(config: &Config) -> Vec<String> {
    TOOLBOXES
        .iter()
        .filter(|kind| kind.section_hint.is_some() && !(kind.settings)(config).is_null())
        .filter(|kind| !config.tools.enabled.iter().any(|name| name == kind.name))
        .map(|kind| {
            format!(
                "[{0}] is configured but \"{0}\" is not in tools.enabled, so it does nothing: add \"{0}\" to \
                 tools.enabled, or remove the [{0}] section",
                kind.name
            )
        })
        .collect()
}

/// One toolbox built from a configuration, with the settings it was built from.
#[derive(Clone)]
pub(crate) struct BuiltToolbox {
    pub(crate) name: String,
    pub(crate) settings: Value,
    pub(crate) toolbox: Arc<dyn Toolbox>,
    /// The same toolbox, typed, when it is an upstream MCP server (for `admin_upstream_*`).
    pub(crate) upstream: Option<Arc<UpstreamToolbox>>,
}

/// Builds the toolboxes `config` switches on, each from its settings (checked as
/// [`validate`] does). A toolbox of `running` whose settings are unchanged is kept as it
/// is (with its sessions, pools and state) instead of rebuilt.
///
/// # Errors
/// [`ServerError::UnknownToolbox`], [`ServerError::Toolbox`] naming the toolbox that failed.
pub(crate) fn build(
    config: &Config,
    services: &Services,
    running: &[BuiltToolbox],
) -> Result<Vec<BuiltToolbox>, ServerError> {
    let kinds = active(config)?;
    let names: Vec<&'static str> = kinds.iter().map(|kind| kind.name).collect();
    let context = BuildContext {
        names: &names,
        tokens: &services.tokens,
        reload: &services.reload,
        pins: Some(services.pins.clone()),
    };
    let mut built = Vec::with_capacity(kinds.len());
    for kind in kinds {
        let settings = kind.settings_in(config)?;
        let kept = running.iter().find(|old| old.name == kind.name && old.settings == settings);
        let toolbox = match kept {
            Some(old) => old.toolbox.clone(),
            None => (kind.build)(settings.clone(), &context).map_err(|message| kind.error(message))?,
        };
        built.push(BuiltToolbox { name: kind.name.to_owned(), settings, toolbox, upstream: None });
    }
    for (name, upstream) in upstreams(config)? {
        let toolbox_name = format!("upstream:{name}");
        let settings = serde_json::to_value(&upstream).unwrap_or(Value::Null);
        let kept = running.iter().find(|old| old.name == toolbox_name && old.settings == settings);
        let toolbox = match kept.and_then(|old| old.upstream.clone()) {
            Some(old) => old,
            None => Arc::new(
                UpstreamToolbox::new(&name, upstream, services.config_dir.as_deref(), context.pins.clone())
                    .map_err(|message| upstream_error(&name, message))?,
            ),
        };
        built.push(BuiltToolbox { name: toolbox_name, settings, toolbox: toolbox.clone(), upstream: Some(toolbox) });
    }
    Ok(built)
}
