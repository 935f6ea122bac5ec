//! The `system` toolbox: `system_health`, `system_about`, `system_whoami`,
//! `get_current_time`, `convert_time`.

use std::time::Instant;

use async_trait::async_trait;
use jiff::Timestamp;
use rampart_core::{CallContext, ToolAnnotations, ToolError, ToolOutput, ToolSpec, Toolbox, parse_arguments};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
}

impl SystemToolbox {
    /// The toolbox; `info.local_timezone` falls back to the system's zone, then UTC.
    ///
    /// # Errors
    /// [`ToolError::Failed`] when the configured local zone is not an IANA name.
    pub fn new(info: SystemInfo) -> Result<Self, ToolError> {
        let local_timezone = time::local_zone_name(info.local_timezone.as_deref());
        time::zone(&local_timezone)?;
        Ok(Self { info, local_timezone, started: Instant::now() })
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoArguments {}

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

fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// Structured content plus its JSON text, as MCP 2025-06-18 recommends for backwards
/// compatibility ("Structured Content").
fn structured(value: &impl Serialize) -> Result<ToolOutput, ToolError> {
    ToolOutput::structured(value, json_text(value))
}

#[async_trait]
impl Toolbox for SystemToolbox {
    fn name(&self) -> &str {
        "system"
    }

    async fn tools(&self) -> Vec<ToolSpec> {
        vec![
            ToolSpec::new::<NoArguments>("system_health", "Report whether the server is healthy, and its uptime.")
                .title("Server health")
                .output::<Health>()
                .annotations(ToolAnnotations::read_only()),
            ToolSpec::new::<NoArguments>(
                "system_about",
                "Describe this server: name, version, enabled toolboxes and supported MCP protocol versions.",
            )
            .title("About this server")
            .output::<About>()
            .annotations(ToolAnnotations::read_only()),
            ToolSpec::new::<NoArguments>(
                "system_whoami",
                "Who the server takes you for: principal, how it was authenticated, roles, transport and session.",
            )
            .title("Who am I")
            .output::<WhoAmI>()
            .annotations(ToolAnnotations::read_only()),
            ToolSpec::new::<CurrentTimeArguments>(
                "get_current_time",
                &format!(
                    "Get the current time in an IANA time zone. Without a zone, uses the server's local zone ({}).",
                    self.local_timezone
                ),
            )
            .title("Current time")
            .output::<TimeResult>()
            .annotations(ToolAnnotations::read_only()),
            ToolSpec::new::<ConvertTimeArguments>(
                "convert_time",
                "Convert a 24-hour time (HH:MM, today in the source zone) from one IANA time zone to another.",
            )
            .title("Convert time between zones")
            .output::<TimeConversionResult>()
            .annotations(ToolAnnotations::read_only()),
        ]
    }

    async fn call_tool(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        context: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        match tool {
            "system_health" => {
                parse_arguments::<NoArguments>(arguments)?;
                structured(&Health { status: "ok".into(), uptime_s: self.started.elapsed().as_secs() })
            }
            "system_about" => {
                parse_arguments::<NoArguments>(arguments)?;
                structured(&About {
                    name: "rampart".into(),
                    version: rampart_core::VERSION.into(),
                    toolboxes: self.info.toolboxes.clone(),
                    protocol_versions: self.info.protocol_versions.clone(),
                })
            }
            "system_whoami" => {
                parse_arguments::<NoArguments>(arguments)?;
                let caller = &context.caller;
                structured(&WhoAmI {
                    principal: caller.principal.id.clone(),
                    kind: variant_name(&caller.principal.kind),
                    roles: caller.principal.roles.clone(),
                    transport: variant_name(&caller.transport),
                    session: caller.session.clone(),
                })
            }
            "get_current_time" => {
                let arguments: CurrentTimeArguments = parse_arguments(arguments)?;
                let zone = arguments.timezone.unwrap_or_else(|| self.local_timezone.clone());
                structured(&time::current_time(&zone, Timestamp::now())?)
            }
            "convert_time" => {
                let a: ConvertTimeArguments = parse_arguments(arguments)?;
                structured(&time::convert_time(&a.source_timezone, &a.time, &a.target_timezone, Timestamp::now())?)
            }
            other => Err(ToolError::NotFound(format!("tool '{other}'"))),
        }
    }
}
