//! The one table of toolboxes: each one's name, the configuration it is built from, how
//! to validate it and how to build it. Start-up, `config check` and reloads all read this
//! table; adding a built-in toolbox is one entry here. A program built on Rampart adds its
//! own as [`ToolboxFactory`]s, built from their `[toolbox.NAME]` sections.

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

/// A toolbox added by the program that embeds Rampart (the `rampart` crate's builder):
/// its name and how to build it from its settings, the `[toolbox.NAME]` section of
/// `rampart.toml` (JSON `null` when absent). Always served (the policy decides who may
/// use it); rebuilt by a reload only when its section changed.
#[derive(Clone)]
pub struct ToolboxFactory {
    name: String,
    build: AddedBuild,
}

/// An added toolbox's constructor: its settings to the toolbox, or why not.
type AddedBuild = Arc<dyn Fn(&Value) -> Result<Arc<dyn Toolbox>, String> + Send + Sync>;

impl std::fmt::Debug for ToolboxFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolboxFactory").field("name", &self.name).finish_non_exhaustive()
    }
}

impl ToolboxFactory {
    /// The toolbox `name` (what `[toolbox.NAME]` and `system_about` call it; 1-32 of
    /// `a-z`, `0-9`, `-`, `_`), built by `build` from its settings. `build`'s error (a
    /// bad setting, a database that cannot be opened) stops the start or the reload,
    /// naming the toolbox.
    pub fn new<T, E, F>(name: &str, build: F) -> Self
    where
        T: Toolbox,
        E: std::fmt::Display,
        F: Fn(&Value) -> Result<T, E> + Send + Sync + 'static,
    {
        Self { name: name.to_owned(), build: Arc::new(move |settings| boxed(build(settings))) }
    }

    /// A toolbox that needs no settings and is built once: `toolbox` itself.
    pub fn from_toolbox<T: Toolbox>(toolbox: T) -> Self {
        let toolbox: Arc<dyn Toolbox> = Arc::new(toolbox);
        Self { name: toolbox.name().to_owned(), build: Arc::new(move |_| Ok(toolbox.clone())) }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn error(&self, message: String) -> ServerError {
        ServerError::Toolbox { toolbox: self.name.clone(), message }
    }
}

/// The running server's services that toolboxes are built over (kept by the reloader to
/// build them again).
pub(crate) struct Services {
    /// The toolboxes the embedding program added.
    pub(crate) added: Vec<ToolboxFactory>,
    pub(crate) tokens: Arc<TokenService>,
    pub(crate) reload: Arc<ReloadHandle>,
    pub(crate) pins: Arc<dyn PinStore>,
    /// The deployment's shared state, when `[cluster]` names one (limits rebuilt by a
    /// reload count there too).
    pub(crate) cluster: Option<Arc<crate::Cluster>>,
    /// The directory of the configuration file given with `--config`: relative paths of
    /// upstreams (`env_file`, `cwd`) start there (else in the working directory).
    pub(crate) config_dir: Option<std::path::PathBuf>,
}

/// What building a toolbox may use besides its settings.
pub(crate) struct BuildContext<'a> {
    /// The toolboxes being built, in order (for `system_about`).
    pub(crate) names: &'a [String],
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
        build: |settings, context| boxed(system(settings, context.names.to_vec())),
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
        // Builds it: its OpenAPI documents are read and their operations checked, so that
        // `config check` says what `serve` would refuse.
        validate: |settings| HttpToolbox::from_config(settings).map(drop).map_err(|e| e.to_string()),
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

/// The names of the toolboxes the program added: each a valid name (it keys
/// `[toolbox.NAME]` and shows in `system_about`), none twice, none a built-in one's.
fn check_added(added: &[ToolboxFactory]) -> Result<(), ServerError> {
    for (index, toolbox) in added.iter().enumerate() {
        let name = toolbox.name();
        let problem = if !rampart_gateway::config::valid_name(name) {
            "a toolbox name is 1-32 characters of a-z, 0-9, '-' or '_', starting with a letter"
        } else if TOOLBOXES.iter().any(|kind| kind.name == name) {
            "a built-in toolbox has this name"
        } else if added[..index].iter().any(|other| other.name() == name) {
            "the program adds two toolboxes with this name"
        } else {
            continue;
        };
        return Err(ServerError::Toolbox { toolbox: name.to_owned(), message: problem.to_owned() });
    }
    Ok(())
}

/// Toolbox names accepted in `tools.enabled` (an added toolbox is always on; naming it
/// there is allowed and changes nothing).
fn known_toolboxes(added: &[ToolboxFactory]) -> impl Iterator<Item = &str> {
    let builtin = TOOLBOXES.iter().filter(|kind| kind.enabled != Enabled::ConformanceProfile).map(|kind| kind.name);
    builtin.chain(added.iter().map(ToolboxFactory::name))
}

fn known(added: &[ToolboxFactory]) -> String {
    known_toolboxes(added).collect::<Vec<_>>().join(", ")
}

/// The built-in toolboxes `config` switches on, in serving order.
///
/// # Errors
/// [`ServerError::UnknownToolbox`] for a name in `tools.enabled` that is not one, or a
/// `[toolbox.NAME]` section for a toolbox this program does not have.
pub(crate) fn active(config: &Config, added: &[ToolboxFactory]) -> Result<Vec<&'static ToolboxKind>, ServerError> {
    check_added(added)?;
    if let Some(unknown) = config.tools.enabled.iter().find(|name| !known_toolboxes(added).any(|known| known == *name))
    {
        return Err(ServerError::UnknownToolbox { name: unknown.clone(), known: known(added) });
    }
    if let Some(sections) = config.toolbox.as_object()
        && let Some(unknown) = sections.keys().find(|name| !added.iter().any(|added| added.name() == *name))
    {
        let known = added.iter().map(ToolboxFactory::name).collect::<Vec<_>>().join(", ");
        return Err(ServerError::Toolbox {
            toolbox: unknown.clone(),
            message: if known.is_empty() {
                format!("[toolbox.{unknown}] is for a toolbox added by a program built on Rampart; this one adds none")
            } else {
                format!("[toolbox.{unknown}]: this program has no toolbox '{unknown}' (it adds: {known})")
            },
        });
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
pub(crate) fn validate(config: &Config, added: &[ToolboxFactory]) -> Result<(), ServerError> {
    for kind in active(config, added)? {
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
/// `tools.enabled` (e.g. `[[fs.roots]]` without `"fs"`), or the console's login without
/// the console, which does nothing. A warning at
/// start, an error for `rampart config check --strict`.
pub(crate) fn unused_sections(config: &Config) -> Vec<String> {
    let console_login = config.auth.jwt.as_ref().is_some_and(|jwt| jwt.console_client_id.is_some());
    let console = (console_login && !config.server.console).then(|| {
        "[auth.jwt] console_client_id is set but server.console is false, so it does nothing: set \
         server.console = true, or remove console_client_id"
            .to_owned()
    });
    let toolboxes = TOOLBOXES
        .iter()
        .filter(|kind| kind.section_hint.is_some() && !(kind.settings)(config).is_null())
        .filter(|kind| !config.tools.enabled.iter().any(|name| name == kind.name))
        .map(|kind| {
            format!(
                "[{0}] is configured but \"{0}\" is not in tools.enabled, so it does nothing: add \"{0}\" to \
                 tools.enabled, or remove the [{0}] section",
                kind.name
            )
        });
    console.into_iter().chain(toolboxes).collect()
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
    let kinds = active(config, &services.added)?;
    let names: Vec<String> = kinds
        .iter()
        .map(|kind| kind.name.to_owned())
        .chain(services.added.iter().map(|added| added.name.clone()))
        .collect();
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
    for added in &services.added {
        let settings = config.toolbox.get(&added.name).cloned().unwrap_or(Value::Null);
        let kept = running.iter().find(|old| old.name == added.name && old.settings == settings);
        let toolbox = match kept {
            Some(old) => old.toolbox.clone(),
            None => (added.build)(&settings).map_err(|message| added.error(message))?,
        };
        built.push(BuiltToolbox { name: added.name.clone(), settings, toolbox, upstream: None });
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str);

    #[async_trait::async_trait]
    impl Toolbox for Named {
        fn name(&self) -> &str {
            self.0
        }
    }

    fn refusal(names: &[&'static str]) -> Option<String> {
        let added: Vec<ToolboxFactory> = names.iter().map(|name| ToolboxFactory::from_toolbox(Named(name))).collect();
        active(&Config::default(), &added).err().map(|error| error.to_string())
    }

    #[test]
    fn added_toolboxes_have_names_of_their_own() {
        assert_eq!(refusal(&["notes", "crm-tools"]), None);
        for (names, expected) in [
            (&["Notes"][..], "toolbox 'Notes': a toolbox name is"),
            (&["notes.v2"], "toolbox 'notes.v2': a toolbox name is"),
            (&[""], "toolbox '': a toolbox name is"),
            (&["fs"], "toolbox 'fs': a built-in toolbox has this name"),
            (&["notes", "notes"], "toolbox 'notes': the program adds two toolboxes with this name"),
        ] {
            let refused = refusal(names).unwrap_or_default();
            assert!(refused.starts_with(expected), "{names:?}: {refused}");
        }
    }

    #[test]
    fn a_console_login_without_the_console_does_nothing() {
        let mut config = Config::default();
        assert!(unused_sections(&config).is_empty());
        let jwt: rampart_config::JwtConfig = serde_json::from_value(serde_json::json!({
            "issuer": "https://idp.example.test", "audience": "https://mcp.example.test/mcp",
            "jwks_url": "https://idp.example.test/jwks", "console_client_id": "rampart-console"
        }))
        .unwrap_or_else(|error| panic!("{error}"));
        config.auth.jwt = Some(jwt);
        let warnings = unused_sections(&config);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("console_client_id"), "{warnings:?}");
        config.server.console = true;
        assert!(unused_sections(&config).is_empty());
    }
}
