//! The raw, serde-shaped policy model: the `[roles.NAME]` tables of `rampart.toml`.
//!
//! This is the first of the two configuration stages (STYLE.md §5): it says what the file
//! may contain and nothing more. [`crate::Policy::new`] validates it (globs, includes,
//! cycles) and merges the built-in roles into it.

use std::collections::BTreeMap;

use rampart_core::Access;
use serde::{Deserialize, Serialize};

/// Every role defined in the configuration, by name: the `[roles]` table of
/// `rampart.toml`.
///
/// A name that is also a built-in role (`public`, `reader`, `writer`, `admin`) does not
/// replace it: the table's grants and includes are **added** to the built-in ones, and its
/// `description`, when given, replaces the built-in description. Built-in grants cannot be
/// taken away; define a new role instead.
pub type PolicyConfig = BTreeMap<String, RoleConfig>;

/// One `[roles.NAME]` table: what a role grants and which other roles it includes.
///
/// Every list is optional and empty by default, so an empty table is a role that grants
/// nothing. Tool, prompt, command, database and HTTP API patterns are globs over names in
/// which `*` matches any run of characters; filesystem and resource patterns are globs
/// over paths and URIs in which `*` stays within one `/`-separated component and `**`
/// crosses components (globset syntax, as in ripgrep).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// What the role is for, shown by `rampart policy explain` and `config check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Other roles whose grants this role also has, transitively. Unknown names and
    /// cycles are errors of [`crate::Policy::new`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<String>,
    /// Globs over tool names, e.g. `fs_*`, `run_command`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Globs over MCP resource URIs (and resource template URIs, for listing and
    /// completing them), e.g. `file:///srv/notes/**`, `test://static-*`. Deny by
    /// default: a role sees and reads no resource until one is granted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Globs over MCP prompt names, e.g. `summarize_*`. Deny by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<String>,
    /// Filesystem scopes: absolute path globs with an access level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fs: Vec<FsScope>,
    /// Globs over command names for the exec toolbox, e.g. `git`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// Database scopes: globs over configured database names with an access level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<DatabaseScope>,
    /// Globs over configured HTTP API names, e.g. `github`, `crm-*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_apis: Vec<String>,
    /// Scopes of the kinds toolboxes define themselves, by kind: `scopes = { notebook =
    /// [{ name = "team-*", access = "read-write" }] }` grants what a toolbox asks with
    /// `Request::scope("notebook", …)`. The kind `*` stands for every kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scopes: BTreeMap<String, Vec<NamedScope>>,
}

/// A filesystem scope, `{ path = "/srv/data/**", access = "read" }`.
///
/// `path` must be absolute (start with `/`) or start with `**`. `/srv/data/**` covers what
/// is under `/srv/data` but not the directory itself; `/srv/data{,/**}` covers both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsScope {
    /// An absolute path glob.
    pub path: String,
    /// What the scope allows; `read` when omitted.
    #[serde(default)]
    pub access: Access,
}

/// A database scope, `{ name = "analytics", access = "read" }`.
pub type DatabaseScope = NamedScope;

/// A scope over named things (databases, a toolbox's own kinds), `{ name = "analytics",
/// access = "read" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedScope {
    /// A glob over the names.
    pub name: String,
    /// What the scope allows; `read` when omitted.
    #[serde(default)]
    pub access: Access,
}
