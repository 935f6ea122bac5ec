//! Rampart as a library: write a team's own MCP tools in Rust and serve them with all of
//! Rampart — authentication (API tokens, JWT, mTLS…), deny-by-default roles with typed
//! scopes, rate limits, the tamper-evident audit log, every transport, and the `rampart`
//! command line, client and shell — without writing any of it.
//!
//! A tool is an `async fn(&State, Args, &CallContext) -> Result<Out, ToolError>`:
//! `Args` is a `serde` + `schemars` type (its schema is the tool's `inputSchema`), `Out`
//! is a `String`, a [`ToolOutput`] or [`Structured<T>`] (whose schema is the tool's
//! `outputSchema`). A [`ToolRouter`] names the functions; a [`Toolbox`] serves the
//! router's tools ([`Toolbox::routes`]) and, if it wants, resources and prompts. [`Rampart`] adds toolboxes
//! to the built-in ones and runs the whole `rampart` command line:
//!
//! ```no_run
//! use rampart::{CallContext, Rampart, Routes, ToolError, ToolRouter, ToolSpec, Toolbox, async_trait};
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//!
//! struct Greeter {
//!     tools: ToolRouter<Greeter>,
//! }
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct GreetArguments {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! async fn greet(_: &Greeter, arguments: GreetArguments, _: &CallContext) -> Result<String, ToolError> {
//!     Ok(format!("Hello, {}!", arguments.name))
//! }
//!
//! #[async_trait]
//! impl Toolbox for Greeter {
//!     fn name(&self) -> &str {
//!         "greeter"
//!     }
//!     fn routes(&self) -> Option<Routes<'_>> {
//!         Some(self.tools.bind(self))
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let tools = ToolRouter::new().tool(ToolSpec::named("greet", "Greet someone.").read_only(), greet);
//!     // `my-server serve`, `my-server token create …`, `my-server tool greet --name Ada`…
//!     Rampart::new().toolbox(Greeter { tools }).run()
//! }
//! ```
//!
//! The security applies to these tools exactly as to the built-in ones: a caller sees and
//! calls `greet` only if one of its roles grants it (`[roles.NAME] tools = ["greet"]` in
//! `rampart.toml`), every call is rate-limited and recorded, and a tool that touches a
//! resource of its own asks the policy first with [`CallContext::authorize`] and a typed
//! [`Request`] (e.g. `Request::scope("notebook", "team")`, granted by `scopes = {
//! notebook = ["team"] }`).
//!
//! [`testing::TestServer`] runs a toolbox through the real server in a unit test, and
//! `docs/toolbox-guide.md` walks through writing, securing and testing a toolbox.

pub mod testing;

/// The guide to writing a toolbox (`docs/toolbox-guide.md`), whose code blocks are
/// compiled as this crate's doctests.
#[doc = include_str!("../../../docs/toolbox-guide.md")]
pub mod guide {}

use std::process::ExitCode;

/// The `async_trait` attribute [`Toolbox`] implementations need.
pub use async_trait::async_trait;
pub use rampart_config::{Config, LoadOptions};
pub use rampart_core::{
    Access, CallContext, CallError, Caller, CatalogChanges, ClientPeer, CompletionRef, Content, IntoToolOutput,
    LogLevel, NoArguments, Principal, PrincipalKind, PromptArgument, PromptMessage, PromptOutput, PromptRole,
    PromptSpec, Request, ResourceContents, ResourceSpec, ResourceTemplateSpec, Routes, ServiceStatus, Structured,
    TRACE_TARGET, TaskSupport, ToolAnnotations, ToolError, ToolFn, ToolOutput, ToolRouter, ToolSpec, Toolbox,
    Transport, VERSION, parse_arguments, pretty,
};
use rampart_gateway::{UpstreamConfig, UpstreamToolbox};
/// The rmcp (official Rust MCP SDK) Rampart is built on: a server written with it mounts
/// with [`Rampart::rmcp_server`] when it uses this version.
pub use rampart_mcp::rmcp;
pub use rampart_server::{ServerError, ToolboxFactory};
/// The JSON Schema derive the argument and result types of tools use (version 1).
pub use schemars;
/// JSON values, as tools receive and return them.
pub use serde_json;

/// A Rampart server with the program's own toolboxes: add them, then [`Rampart::run`] the
/// `rampart` command line (the server, tokens, audit, policy, the client and the shell)
/// or [`Rampart::serve`] a configuration directly.
#[derive(Debug, Default)]
pub struct Rampart {
    added: Vec<ToolboxFactory>,
}

impl Rampart {
    /// Rampart with its built-in toolboxes only (those `tools.enabled` names).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `toolbox`, built once by the program and served whatever the configuration
    /// (the policy decides who may use it). Its tool names must not clash with another
    /// toolbox's: the server refuses to start.
    #[must_use]
    pub fn toolbox<T: Toolbox>(mut self, toolbox: T) -> Self {
        self.added.push(ToolboxFactory::from_toolbox(toolbox));
        self
    }

    /// Adds the toolbox `name`, built by `build` from its `[toolbox.NAME]` section of
    /// `rampart.toml` (JSON `null` when there is none) at start and again by a reload that
    /// changed the section. `build`'s error stops the start (or the reload), naming the
    /// toolbox.
    #[must_use]
    pub fn toolbox_from_settings<T, E, F>(mut self, name: &str, build: F) -> Self
    where
        T: Toolbox,
        E: std::fmt::Display,
        F: Fn(&serde_json::Value) -> Result<T, E> + Send + Sync + 'static,
    {
        self.added.push(ToolboxFactory::new(name, build));
        self
    }

    /// Mounts an rmcp server of the program — any [`rmcp::ServerHandler`], e.g. a struct
    /// with a `#[tool_router]` — as the toolbox `name`, unchanged: each principal gets its
    /// own instance from `new_server` (as each session would over streamable HTTP), which
    /// Rampart speaks MCP to in-process, so its tools, resources, prompts, progress, logs
    /// and elicitation reach clients through the same authentication, policy, limits and
    /// audit as every other tool. `[toolbox.NAME]` may set `prefix` (none by default),
    /// `stateless = true` (one instance for everyone), `tools.include`/`exclude`/`rename`
    /// and `timeout_secs`, as for an `[upstreams.NAME]` server.
    #[must_use]
    pub fn rmcp_server<S, F>(mut self, name: &str, new_server: F) -> Self
    where
        S: rmcp::ServerHandler,
        F: Fn() -> S + Send + Sync + 'static,
    {
        let server = rampart_mcp::InProcessServer::new(name, new_server);
        let toolbox = name.to_owned();
        self.added.push(ToolboxFactory::new(name, move |settings: &serde_json::Value| {
            let config: UpstreamConfig = match settings {
                serde_json::Value::Null => UpstreamConfig::default(),
                other => serde_json::from_value(other.clone()).map_err(|error| error.to_string())?,
            };
            if config.command.is_some() || config.url.is_some() {
                return Err("command and url are for [upstreams.NAME]: this server runs in the program".to_owned());
            }
            UpstreamToolbox::mounted(&toolbox, server.clone(), config)
        }));
        self
    }

    /// Runs the `rampart` command line on the process's arguments with these toolboxes:
    /// `serve` serves them, `config check` checks their sections, every client command
    /// (`tools`, `tool NAME --flags`, `shell`, `chat`) reaches them like any tool. Returns
    /// the process's exit status.
    pub fn run(self) -> ExitCode {
        rampart_cli::main_with(self.added)
    }

    /// Loads the configuration as `rampart serve` does (defaults < file < `RAMPART_*`
    /// environment < `options.overrides`) and serves it with these toolboxes until
    /// SIGINT/SIGTERM (HTTP) or the end of stdin (stdio). Logging is the caller's to set
    /// up (e.g. `tracing-subscriber`), and so are traces: `[telemetry]` is applied by
    /// [`Rampart::run`]'s `serve`. A subscriber here should leave out the target
    /// [`TRACE_TARGET`] from its log (`rampart::trace=off`), or give it to an OpenTelemetry
    /// layer, with a W3C `traceparent` propagator installed, to export Rampart's spans.
    ///
    /// # Errors
    /// [`ServerError`] for a bad configuration, a toolbox that cannot be built, or an
    /// address that cannot be bound.
    pub async fn serve(self, options: LoadOptions) -> Result<(), ServerError> {
        let loaded = rampart_config::load(options.clone()).map_err(|error| ServerError::Config(error.to_string()))?;
        rampart_server::serve(loaded.config, options, self.added).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[derive(Clone, Default)]
    struct Empty;

    impl rmcp::ServerHandler for Empty {}

    #[tokio::test]
    async fn a_mounted_servers_settings_are_checked_like_an_upstreams() {
        let start = |toml: &'static str| async move {
            let rampart = Rampart::new().rmcp_server("empty", Empty::default);
            testing::TestServer::start(rampart, toml).await.map(drop).map_err(|error| error.to_string())
        };
        assert!(start("[toolbox.empty]\nprefix = \"e_\"\n").await.is_ok());
        let refused = start("[toolbox.empty]\nprefix = \"e prefix\"\n").await.unwrap_err();
        assert!(refused.contains("toolbox 'empty'") && refused.contains("prefix 'e prefix'"), "{refused}");
        let refused = start("[toolbox.empty]\ntools = { rename = { x = \"\" } }\n").await.unwrap_err();
        assert!(refused.contains("tools.rename.x is empty"), "{refused}");
        let refused = start("[toolbox.empty]\nurl = \"http://127.0.0.1:1/mcp\"\n").await.unwrap_err();
        assert!(refused.contains("command and url are for [upstreams.NAME]"), "{refused}");
    }
}
