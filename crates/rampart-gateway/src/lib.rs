//! The gateway: MCP servers people already run — a stdio command or a URL — mounted
//! behind Rampart as toolboxes ([`UpstreamToolbox`]), so that their tools, resources and
//! prompts pass through the one pipeline (authentication, roles, limits, audit) like
//! built-in ones.
//!
//! - [`config`]: `[upstreams.NAME]` (command/args/env/cwd or url/headers, prefix,
//!   `tools.include/exclude/rename/descriptions`, `start`, `stateless`, `pin`);
//! - [`upstream`]: the toolbox — supervision with exponential backoff, one upstream
//!   session per principal (or one shared), progress/log/sampling/elicitation relayed
//!   to the calling session, cancellation relayed upstream, `list_changed` into the
//!   catalog, resource subscriptions relayed;
//! - [`oauth`]: Rampart's own access token for an upstream that requires one (client
//!   credentials);
//! - [`pin`]: trust on first use of tool definitions (a changed tool is hidden until
//!   approved);
//! - [`import`]: `mcpServers` blocks (Claude Desktop, Cursor, VS Code) → `rampart.toml`.
//!
//! The caller's credentials never reach an upstream: upstream headers and environment
//! come from the configuration only, and a stdio child inherits none of Rampart's
//! environment beyond [`rampart_mcp::SAFE_INHERITED_ENV`].

pub mod config;
pub mod import;
pub mod oauth;
pub mod pin;
pub mod upstream;

pub use config::{UpstreamConfig, UpstreamConfigError, UpstreamsConfig, parse_upstreams};
pub use pin::{Pin, PinStore};
pub use upstream::{ChangedTool, Phase, UpstreamStatus, UpstreamToolbox};
