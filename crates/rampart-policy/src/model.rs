//! The raw, serde-shaped policy model: the `[roles.NAME]` tables of `rampart.toml`.
//!
//! This is the first of the two configuration stages (STYLE.md §5): it says what the file
//! may contain and nothing more. [`crate::Policy::new`] validates it (globs, includes,
//! cycles) and merges the built-in roles into it.

use std::collections::BTreeMap;
use std::fmt;

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
/// nothing. Tool, command, database and HTTP API patterns are globs over names in which
/// `*` matches any run of characters; filesystem patterns are globs over absolute paths
/// in which `*` stays within one path component and `**` crosses components (globset
/// syntax, as in ripgrep).
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseScope {
    /// A glob over configured database names.
    pub name: String,
    /// What the scope allows; `read` when omitted.
    #[serde(default)]
    pub access: Access,
}

/// An access level, written `read` or `read-write`.
///
/// A `read-write` grant satisfies a `read` request; a `read` grant does not satisfy a
/// `read-write` request. The default is the narrower one, `read`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Look, never change.
    #[default]
    Read,
    /// Look and change (create, write, delete, execute statements that modify).
    ReadWrite,
}

impl Access {
    /// Whether a grant of `self` satisfies a request for `requested`.
    pub fn satisfies(self, requested: Access) -> bool {
        match (self, requested) {
            (Self::ReadWrite, _) | (Self::Read, Self::Read) => true,
            (Self::Read, Self::ReadWrite) => false,
        }
    }

    /// The spelling used in `rampart.toml`: `read` or `read-write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ReadWrite => "read-write",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
