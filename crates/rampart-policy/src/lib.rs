//! Rampart's authorization: deny-by-default role-based access control (RBAC), as pure
//! functions over a validated configuration. No IO, no async.
//!
//! A **principal** (from `rampart-auth`) holds **roles**. A role grants **rules**: globs
//! over tool names (`tools`), MCP resource URIs (`resources`) and prompt names
//! (`prompts`), and typed **scopes** — filesystem path globs with `read`/`read-write`
//! (`fs`), command names (`commands`), database names with an access level (`databases`)
//! and HTTP API names (`http_apis`) — and may include other roles, transitively. A
//! [`Request`] (defined in `rampart-core`, which the pipeline and the toolboxes use too) is
//! allowed when some rule reached from the principal's roles covers it, and denied
//! otherwise; the [`Decision`] names the [`Grant`] behind an allow, or the missing
//! [`Permission`] behind a deny.
//!
//! ```toml
//! [roles.ops]
//! description = "operators"
//! includes = ["writer"]
//! tools = ["fs_*", "run_command"]
//! resources = ["file:///srv/notes/**"]
//! prompts = ["summarize_*"]
//! fs = [{ path = "/srv/data/**", access = "read" }, { path = "/srv/out/**", access = "read-write" }]
//! commands = ["git", "ls"]
//! databases = [{ name = "analytics", access = "read" }]
//! http_apis = ["github", "crm-*"]
//! ```
//!
//! The built-in roles `public`, `reader`, `writer` and `admin` are always defined (see
//! `builtin.rs`); a table with one of their names adds grants to it. Tool grants and
//! scopes are separate checks: the pipeline asks about the tool (or resource, prompt),
//! the toolbox asks about each scope it touches, with the same [`Policy`].
//!
//! Two stages, as everywhere in Rampart's configuration: [`PolicyConfig`] is the raw
//! serde model (`deny_unknown_fields`), embedded by `rampart-config`; [`Policy::new`]
//! validates and compiles it once, and [`Policy::decide`] then cannot fail.

mod builtin;
mod decision;
mod explain;
mod model;
mod policy;
mod request;

pub use decision::{Decision, Grant, Rule};
pub use explain::{Explanation, MissReason, NearMiss, RoleExpansion};
pub use model::{DatabaseScope, FsScope, PolicyConfig, RoleConfig};
pub use policy::{Policy, PolicyError};
pub use rampart_core::{Access, Request};
pub use request::{PathProblem, Permission};

#[cfg(test)]
mod tests;
