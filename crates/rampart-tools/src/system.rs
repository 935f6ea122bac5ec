//! The `system` toolbox: `system_health`, `system_about`, `system_whoami`,
//! `get_current_time`, `convert_time`.

use std::time::Instant;

use async_trait::async_trait;
use jiff::Timestamp;
use rampart_core::{CallContext, NoArguments, Routes, Structured, ToolError, ToolRouter, ToolSpec, Toolbox};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::time::{self, TimeConversionResult, TimeResult};

/// What `system_about` reports, fixed at start-up.
#[derive(Debug, Clone, Default)]
pub struct SystemInfo {
    /// Enabled toolboxes, in order.
    pub toolboxes: Vec<String>,
    /// Protocol revisions the server negotiates, newest first.
    pub protocol_versions: Vec<String>,
    /// Zone for time tools called without one (`tools.system.local_timezone`).
    pub local_timezone: Option<String>,
}

/// Health, identity and time tools.
#[derive(Debug)]
pub struct SystemToolbox {
    info: SystemInfo,
    local_timezone: String,
    started: Instant,
    tools: ToolRouter<Self>,
}

impl SystemToolbox {
    /// The toolbox; `info.local_timezone` falls back to the system's zone, then UTC.
    ///
    /// # Errors
    /// [`ToolError::Failed`] when the configured local zone is not an IANA name.
    pub fn new(info: SystemInfo) -> Result<Self, ToolError> {
        // Only a configured zone needs checking: the system's comes from a database.
        if let Some(configured) = &info.local_timezone {
            time::check_zone(configured)?;
        }
        let local_timezone = time::local_zone_name(info.local_timezone.as_deref());
        let tools = tools(&local_timezone);
        Ok(Self { info, local_timezone, started: Instant::now(), tools })
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CurrentTimeArguments {
    /// IANA time zone name, e.g. 'America/New_York' or 'Europe/London'. Defaults to the
    /// server's local zone.
    timezone: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ConvertTimeArguments {
    /// IANA name of the source zone, e.g. 'America/New_York'.
    source_timezone: String,
    /// Time to convert, 24-hour 'HH:MM'.
    time: String,
    /// IANA name of the target zone, e.g. 'Asia/Tokyo'.
    target_timezone: String,
}

/// `system_health` result.
#[derive(Serialize, JsonSchema)]
struct Health {
    /// Always `ok` when the server answers.
    status: String,
    /// Seconds since the toolbox started.
    uptime_s: u64,
}

/// `system_about` result.
#[derive(Serialize, JsonSchema)]
struct About {
    /// `rampart`.
    name: String,
    /// Server version.
    version: String,
    /// Enabled toolboxes.
    toolboxes: Vec<String>,
    /// Supported MCP protocol revisions, newest first.
    protocol_versions: Vec<String>,
}

/// `system_whoami` result: the caller as the server sees it.
#[derive(Serialize, JsonSchema)]
struct WhoAmI {
    /// The principal's id, e.g. `token:ci`, `jwt:alice`, `local`.
    principal: String,
    /// How it was authenticated, e.g. `api_token`, `jwt`, `client_certificate`,
    /// `local_operator`.
    kind: String,
    /// Its roles, as the policy reads them.
    roles: Vec<String>,
    /// The transport, e.g. `streamable_http`, `stdio`.
    transport: String,
    /// The MCP session this call belongs to, if any.
    session: Option<String>,
}

/// The snake-case name serde gives a unit variant, e.g. `api_token`.
fn variant_name(value: &impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

#[async_trait]
impl Toolbox for SystemToolbox {
    fn name(&self) -> &str {
        "system"
    }

    fn routes(&self) -> Option<Routes<'_>> {
        Some(self.tools.bind(self))
    }
}

/// The tools, each a function below; `get_current_time`'s description names the zone it
/// defaults to.
fn tools(local_timezone: &str) -> ToolRouter<SystemToolbox> {
    let current_time = format!(
        "Get the current time in an IANA time zone. Without a zone, uses the server's local zone ({local_timezone})."
    );
    ToolRouter::new()
        .tool(
            ToolSpec::named("system_health", "Report whether the server is healthy, and its uptime.")
                .title("Server health")
                .read_only(),
            health,
        )
        .tool(
            ToolSpec::named(
                "system_about",
                "Describe this server: name, version, enabled toolboxes and supported MCP protocol versions.",
            )
            .title("About this server")
            .read_only(),
            about,
        )
        .tool(
            ToolSpec::named(
                "system_whoami",
                "Who the server takes you for: principal, how it was authenticated, roles, transport and session.",
            )
            .title("Who am I")
            .read_only(),
            whoami,
        )
        .tool(ToolSpec::named("get_current_time", &current_time).title("Current time").read_only(), current_time_tool)
        .tool(
            ToolSpec::named(
                "convert_time",
                "Convert a 24-hour time (HH:MM, today in the source zone) from one IANA time zone to another.",
            )
            .title("Convert time between zones")
            .read_only(),
            convert_time,
        )
}

async fn health(system: &SystemToolbox, _: NoArguments, _: &CallContext) -> Result<Structured<Health>, ToolError> {
    Ok(Structured(Health { status: "ok".into(), uptime_s: system.started.elapsed().as_secs() }))
}

async fn about(system: &SystemToolbox, _: NoArguments, _: &CallContext) -> Result<Structured<About>, ToolError> {
    Ok(Structured(About {
        name: "rampart".into(),
        version: rampart_core::VERSION.into(),
        toolboxes: system.info.toolboxes.clone(),
        protocol_versions: system.info.protocol_versions.clone(),
    }))
}

async fn whoami(_: &SystemToolbox, _: NoArguments, context: &CallContext) -> Result<Structured<WhoAmI>, ToolError> {
    let caller = &context.caller;
    Ok(Structured(WhoAmI {
        principal: caller.principal.id.clone(),
        kind: variant_name(&caller.principal.kind),
        roles: caller.principal.roles.clone(),
        transport: variant_name(&caller.transport),
        session: caller.session.clone(),
    }))
}

async fn current_time_tool(
    system: &SystemToolbox,
    arguments: CurrentTimeArguments,
    _: &CallContext,
) -> Result<Structured<TimeResult>, ToolError> {
    let zone = arguments.timezone.unwrap_or_else(|| system.local_timezone.clone());
    Ok(Structured(time::current_time(&zone, Timestamp::now())?))
}

async fn convert_time(
    _: &SystemToolbox,
    a: ConvertTimeArguments,
    _: &CallContext,
) -> Result<Structured<TimeConversionResult>, ToolError> {
    Ok(Structured(time::convert_time(&a.source_timezone, &a.time, &a.target_timezone, Timestamp::now())?))
}
