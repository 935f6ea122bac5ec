//! From configuration to a [`Pipeline`], an [`Authenticator`] and an [`McpHandler`]:
//! everything `serve` needs, built and validated before anything listens.

use std::sync::Arc;

use rampart_auth::Authenticator;
use rampart_config::{Config, Profile};
use rampart_core::{Pipeline, Toolbox, Transport};
use rampart_mcp::{McpHandler, ServerIdentity, supported_protocol_versions};
use rampart_tools::{ConformanceToolbox, SystemInfo, SystemToolbox};

use crate::ServerError;

/// Toolbox names accepted in `tools.enabled`.
pub const KNOWN_TOOLBOXES: &[&str] = &["system"];

/// Everything built from the configuration.
pub struct Built {
    /// The one call pipeline.
    pub pipeline: Arc<Pipeline>,
    /// HTTP authentication.
    pub authenticator: Arc<Authenticator>,
    /// The MCP handler (for the configured transport).
    pub handler: McpHandler,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built").field("pipeline", &self.pipeline).finish_non_exhaustive()
    }
}

/// Validates `config` and builds the pipeline, authenticator and handler.
///
/// # Errors
/// [`ServerError`] naming the bad setting.
pub fn build(config: &Config, transport: Transport) -> Result<Built, ServerError> {
    let mut names: Vec<String> = Vec::new();
    for name in &config.tools.enabled {
        if !KNOWN_TOOLBOXES.contains(&name.as_str()) {
            return Err(ServerError::UnknownToolbox { name: name.clone(), known: KNOWN_TOOLBOXES.join(", ") });
        }
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    if config.server.profile == Profile::Conformance {
        names.push("conformance".into());
    }
    let mut builder = Pipeline::builder();
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
            _ => Arc::new(ConformanceToolbox),
        };
        builder = builder.toolbox(toolbox);
    }
    let pipeline = Arc::new(builder.build().map_err(|e| ServerError::Duplicate(e.to_string()))?);
    let authenticator = Authenticator::new(
        config.auth.key.as_ref().map(|k| k.expose()),
        config.auth.basic.as_ref().map(|b| (b.user.as_str(), b.password_hash.expose())),
    )
    .map_err(|e| ServerError::Auth(e.to_string()))?;
    let identity = ServerIdentity {
        name: "rampart".into(),
        version: rampart_core::VERSION.into(),
        instructions: Some(
            "Rampart serves tools under authentication, policy and audit. Call system_about to see what is enabled."
                .into(),
        ),
    };
    let handler = McpHandler::new(pipeline.clone(), identity, transport);
    Ok(Built { pipeline, authenticator: Arc::new(authenticator), handler })
}
