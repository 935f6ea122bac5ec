//! The `admin` toolbox: API-token management and configuration reload as MCP tools.
//! `rampart token …`, the first-run admin token, `rampart config reload` and `SIGHUP`
//! all call these tools through the pipeline, so each is authorized, admitted and
//! recorded like any MCP call. Only the `admin` role is granted `admin_*` tools.

use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use rampart_core::{
    CallContext, NoArguments, Routes, ToolAnnotations, ToolError, ToolOutput, ToolRouter, ToolSpec, Toolbox,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use rampart_gateway::{ChangedTool, UpstreamStatus, UpstreamToolbox};

use crate::{
    reload::{ReloadReport, Reloader},
    tokens::{CreatedToken, TokenError, TokenInfo, TokenService, parse_duration},
};

/// Where `admin_config_reload` finds the running server's [`Reloader`]: set once the
/// server is built; never set in a `rampart token` command, which has nothing to reload.
#[derive(Debug, Default)]
pub(crate) struct ReloadHandle(OnceLock<Weak<Reloader>>);

impl ReloadHandle {
    /// Points the handle at `reloader` (once).
    pub(crate) fn set(&self, reloader: &Arc<Reloader>) {
        let _ = self.0.set(Arc::downgrade(reloader));
    }

    fn get(&self) -> Option<Arc<Reloader>> {
        self.0.get().and_then(Weak::upgrade)
    }
}

/// Token management and configuration tools.
#[derive(Debug)]
pub(crate) struct AdminToolbox {
    tokens: Arc<TokenService>,
    reload: Arc<ReloadHandle>,
    tools: ToolRouter<Self>,
}

impl AdminToolbox {
    /// Tools over `tokens`, reloading through `reload`.
    pub(crate) fn new(tokens: Arc<TokenService>, reload: Arc<ReloadHandle>) -> Self {
        Self { tokens, reload, tools: Self::tools() }
    }

    /// The tools, each a method below.
    fn tools() -> ToolRouter<Self> {
        ToolRouter::new()
            .tool(
                ToolSpec::named("admin_token_create", "Create an API token with roles; returns the token once.")
                    .title("Create an API token")
                    .output::<CreatedToken>()
                    .annotations(ToolAnnotations::write()),
                Self::token_create,
            )
            .tool(
                ToolSpec::named("admin_token_list", "List API tokens (never their secrets): roles, status, dates.")
                    .title("List API tokens")
                    .output::<TokenList>()
                    .read_only(),
                Self::token_list,
            )
            .tool(
                ToolSpec::named("admin_token_revoke", "Revoke an API token by id or name; it stops working at once.")
                    .title("Revoke an API token")
                    .output::<TokenInfo>()
                    .annotations(ToolAnnotations::write().destructive(true).idempotent(true)),
                Self::token_revoke,
            )
            .tool(
                ToolSpec::named("admin_token_rotate", "Replace an API token's secret; the old one stops working.")
                    .title("Rotate an API token")
                    .output::<CreatedToken>()
                    .annotations(ToolAnnotations::write().destructive(true)),
                Self::token_rotate,
            )
            .tool(
                ToolSpec::named(
                    "admin_config_reload",
                    "Re-read the server's configuration and apply it at once (roles, limits, toolboxes); an invalid \
                     one is refused and the running one stays.",
                )
                .title("Reload the configuration")
                .output::<ReloadReport>()
                .annotations(ToolAnnotations::write().idempotent(true)),
                Self::config_reload,
            )
            .tool(
                ToolSpec::named(
                    "admin_upstream_list",
                    "List the upstream MCP servers mounted behind Rampart: state, since when, last error, tools, \
                     calls, p50/p99 latency.",
                )
                .title("List upstream MCP servers")
                .read_only(),
                Self::upstream_list,
            )
            .tool(
                ToolSpec::named(
                    "admin_upstream_show",
                    "Show one upstream MCP server, with the diff of each pinned tool whose definition changed.",
                )
                .title("Show an upstream MCP server")
                .read_only(),
                Self::upstream_show,
            )
            .tool(
                ToolSpec::named(
                    "admin_upstream_approve",
                    "Approve the changed definition of an upstream's pinned tool (or all of them), which is served \
                     again; returns the diff approved.",
                )
                .title("Approve changed upstream tools")
                .annotations(ToolAnnotations::write()),
                Self::upstream_approve,
            )
            .tool(
                ToolSpec::named(
                    "admin_upstream_restart",
                    "Restart an upstream MCP server: close its sessions (its processes) and connect again.",
                )
                .title("Restart an upstream MCP server")
                .annotations(ToolAnnotations::write().idempotent(true)),
                Self::upstream_restart,
            )
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateArguments {
    /// Unique name, e.g. 'ci' (letters, digits, '.', '_', '-').
    name: String,
    /// Roles, e.g. ["reader"].
    roles: Vec<String>,
    /// Lifetime such as '30d', '12h', '90m'; none: never expires.
    expires_in: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TokenKey {
    /// Token id (tok_…) or name.
    id: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpstreamKey {
    /// The upstream's name in [upstreams.NAME].
    upstream: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ApproveArguments {
    /// The upstream's name in [upstreams.NAME].
    upstream: String,
    /// One changed tool (its upstream or served name); none: every changed tool.
    tool: Option<String>,
}

#[derive(Serialize)]
struct UpstreamList {
    upstreams: Vec<UpstreamStatus>,
}

#[derive(Serialize)]
struct UpstreamDetail {
    status: UpstreamStatus,
    changed_tools: Vec<ChangedTool>,
}

#[derive(Serialize)]
struct Approved {
    approved: Vec<ChangedTool>,
}

/// One line of `rampart upstream list`.
fn status_line(status: &UpstreamStatus) -> String {
    let mut line = format!(
        "{} [{}] {} since {} — {} tools, {} calls, {} errors",
        status.name, status.transport, status.state, status.since, status.tools, status.calls, status.errors
    );
    if let (Some(p50), Some(p99)) = (status.p50_ms, status.p99_ms) {
        line.push_str(&format!(", p50 {p50} ms, p99 {p99} ms"));
    }
    if status.changed_tools > 0 {
        line.push_str(&format!(
            ", {} changed tools hidden (rampart upstream show {})",
            status.changed_tools, status.name
        ));
    }
    if let Some(error) = &status.last_error {
        line.push_str(&format!("; last error: {error}"));
    }
    line
}

impl AdminToolbox {
    async fn upstreams(&self) -> Result<Vec<Arc<UpstreamToolbox>>, ToolError> {
        let reloader =
            self.reload.get().ok_or_else(|| ToolError::Failed("this process serves no upstream MCP servers".into()))?;
        Ok(reloader.upstreams().await)
    }

    async fn upstream(&self, name: &str) -> Result<Arc<UpstreamToolbox>, ToolError> {
        let upstreams = self.upstreams().await?;
        let known = upstreams.iter().map(|u| u.upstream_name().to_owned()).collect::<Vec<_>>().join(", ");
        upstreams.into_iter().find(|u| u.upstream_name() == name).ok_or_else(|| {
            ToolError::Failed(format!(
                "no upstream named '{name}' (configured: {})",
                if known.is_empty() { "none" } else { &known }
            ))
        })
    }
}

#[derive(Serialize, JsonSchema)]
struct TokenList {
    /// All tokens, oldest first.
    tokens: Vec<TokenInfo>,
}

fn failed(error: TokenError) -> ToolError {
    match error {
        TokenError::Store(store) => ToolError::Internal(store.to_string()),
        other => ToolError::Failed(other.to_string()),
    }
}

fn created(token: &CreatedToken, verb: &str) -> Result<ToolOutput, ToolError> {
    let text = format!(
        "Token '{}' {verb} (id {}, roles {}). It is shown only now; store it safely:\n{}",
        token.info.name,
        token.info.id,
        token.info.roles.join(", "),
        token.token
    );
    ToolOutput::structured(token, text)
}

#[async_trait]
impl Toolbox for AdminToolbox {
    fn name(&self) -> &str {
        "admin"
    }

    fn routes(&self) -> Option<Routes<'_>> {
        Some(self.tools.bind(self))
    }
}

/// The tools. Their results are structured, each with its own text (not the JSON); the
/// `admin_upstream_*` ones declare no output schema.
impl AdminToolbox {
    async fn token_create(&self, a: CreateArguments, _: &CallContext) -> Result<ToolOutput, ToolError> {
        let expires = a.expires_in.as_deref().map(parse_duration).transpose().map_err(failed)?;
        let token = self.tokens.create(&a.name, a.roles, expires).await.map_err(failed)?;
        created(&token, "created")
    }

    async fn token_list(&self, _: NoArguments, _: &CallContext) -> Result<ToolOutput, ToolError> {
        let tokens = self.tokens.list().await.map_err(failed)?;
        let text = tokens
            .iter()
            .map(|t| format!("{} {} [{}] {} {}", t.id, t.name, t.roles.join(","), t.status, t.prefix))
            .collect::<Vec<_>>()
            .join("\n");
        ToolOutput::structured(&TokenList { tokens }, text)
    }

    async fn token_revoke(&self, key: TokenKey, _: &CallContext) -> Result<ToolOutput, ToolError> {
        let revoked = self.tokens.revoke(&key.id).await.map_err(failed)?;
        let text = format!("Token '{}' ({}) revoked.", revoked.name, revoked.id);
        ToolOutput::structured(&revoked, text)
    }

    async fn token_rotate(&self, key: TokenKey, _: &CallContext) -> Result<ToolOutput, ToolError> {
        let token = self.tokens.rotate(&key.id).await.map_err(failed)?;
        created(&token, "rotated")
    }

    async fn config_reload(&self, _: NoArguments, _: &CallContext) -> Result<ToolOutput, ToolError> {
        let reloader = self
            .reload
            .get()
            .ok_or_else(|| ToolError::Failed("this process serves no configuration to reload".into()))?;
        let report = reloader.reload().await.map_err(|error| ToolError::Failed(error.to_string()))?;
        let text = report.to_string();
        ToolOutput::structured(&report, text)
    }

    async fn upstream_list(&self, _: NoArguments, _: &CallContext) -> Result<ToolOutput, ToolError> {
        let mut upstreams = Vec::new();
        for upstream in self.upstreams().await? {
            upstreams.push(upstream.status().await);
        }
        let text = upstreams.iter().map(status_line).collect::<Vec<_>>().join("\n");
        let text =
            if text.is_empty() { "No upstream MCP server is configured ([upstreams.NAME]).".into() } else { text };
        ToolOutput::structured(&UpstreamList { upstreams }, text)
    }

    async fn upstream_show(&self, a: UpstreamKey, _: &CallContext) -> Result<ToolOutput, ToolError> {
        let upstream = self.upstream(&a.upstream).await?;
        let status = upstream.status().await;
        let changed_tools = upstream.changed_tools();
        let mut text = status_line(&status);
        for changed in &changed_tools {
            text.push_str(&format!("\n\nchanged tool '{}' (hidden until approved):\n{}", changed.tool, changed.diff));
        }
        ToolOutput::structured(&UpstreamDetail { status, changed_tools }, text)
    }

    async fn upstream_approve(&self, a: ApproveArguments, _: &CallContext) -> Result<ToolOutput, ToolError> {
        let upstream = self.upstream(&a.upstream).await?;
        let approved = upstream.approve(a.tool.as_deref()).await.map_err(ToolError::Failed)?;
        let text = approved
            .iter()
            .map(|c| format!("approved '{}' (served as '{}'):\n{}", c.tool, c.served_as, c.diff))
            .collect::<Vec<_>>()
            .join("\n");
        ToolOutput::structured(&Approved { approved }, text)
    }

    async fn upstream_restart(&self, a: UpstreamKey, _: &CallContext) -> Result<ToolOutput, ToolError> {
        let upstream = self.upstream(&a.upstream).await?;
        upstream.restart().await;
        ToolOutput::structured(&upstream.status().await, format!("upstream '{}' is restarting", a.upstream))
    }
}
