//! The built-in roles, `public` < `reader` < `writer`, and `admin`: always defined, listed
//! in one table so that what each level may do can be reviewed in one place.
//!
//! A `[roles.NAME]` table with a built-in name adds to these grants (see
//! [`crate::PolicyConfig`]); nothing in the configuration can remove one.
//!
//! Tool names that no toolbox has yet (`read_*`, `sql_query`, `http_request`, ...) are
//! listed on purpose: they are the names the fs, sql, http and exec toolboxes will use,
//! and sorting them into read-only (`reader`) and changing (`writer`) belongs here, next
//! to the others, not in each toolbox. Tool grants and resource scopes are separate
//! checks: `reader` may call `read_file`, but reads no path until a role grants an `fs`
//! scope.

use rampart_core::Access;

use crate::model::{DatabaseScope, FsScope, NamedScope, RoleConfig};

/// One built-in role, in the shape of [`RoleConfig`] with static lists.
pub(crate) struct BuiltinRole {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) includes: &'static [&'static str],
    pub(crate) tools: &'static [&'static str],
    pub(crate) resources: &'static [&'static str],
    pub(crate) prompts: &'static [&'static str],
    pub(crate) fs: &'static [(&'static str, Access)],
    pub(crate) commands: &'static [&'static str],
    pub(crate) databases: &'static [(&'static str, Access)],
    /// (kind, name glob, access) of `scopes`.
    pub(crate) scopes: &'static [(&'static str, &'static str, Access)],
    pub(crate) http_apis: &'static [&'static str],
}

/// The built-in roles. Review here what each level may do.
pub(crate) const BUILTIN_ROLES: &[BuiltinRole] = &[
    BuiltinRole {
        name: "public",
        description: "what unauthenticated callers may use",
        includes: &[],
        tools: &["system_health"],
        resources: &[],
        prompts: &[],
        fs: &[],
        commands: &[],
        databases: &[],
        scopes: &[],
        http_apis: &[],
    },
    BuiltinRole {
        name: "reader",
        description: "read-only tools; resources only where a role grants a scope",
        includes: &["public"],
        tools: &[
            "system_*",
            "get_current_time",
            "convert_time",
            "read_*",
            "list_*",
            "search_*",
            "get_*",
            "directory_tree",
            "sql_list_*",
            "sql_describe_table",
            "sql_query",
            "http_list_apis",
        ],
        resources: &[],
        prompts: &[],
        fs: &[],
        commands: &[],
        databases: &[],
        scopes: &[],
        http_apis: &[],
    },
    BuiltinRole {
        name: "writer",
        description: "reader, plus tools that change things; resources only where a role grants a scope",
        includes: &["reader"],
        tools: &[
            "write_file",
            "edit_file",
            "create_directory",
            "move_file",
            "sql_execute",
            "http_request",
            "run_command",
            "run_script",
        ],
        resources: &[],
        prompts: &[],
        fs: &[],
        commands: &[],
        databases: &[],
        scopes: &[],
        http_apis: &[],
    },
    BuiltinRole {
        name: "admin",
        description: "everything: every tool, resource and prompt, every scope read-write",
        includes: &[],
        tools: &["*"],
        resources: &["**"],
        prompts: &["*"],
        fs: &[("**", Access::ReadWrite)],
        commands: &["*"],
        databases: &[("*", Access::ReadWrite)],
        scopes: &[("*", "*", Access::ReadWrite)],
        http_apis: &["*"],
    },
];

impl BuiltinRole {
    /// This role as a configuration table, to be merged with the file's table of the same
    /// name.
    pub(crate) fn to_config(&self) -> RoleConfig {
        let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        RoleConfig {
            description: Some(self.description.to_owned()),
            includes: strings(self.includes),
            tools: strings(self.tools),
            resources: strings(self.resources),
            prompts: strings(self.prompts),
            fs: self.fs.iter().map(|(path, access)| FsScope { path: (*path).to_owned(), access: *access }).collect(),
            commands: strings(self.commands),
            databases: self
                .databases
                .iter()
                .map(|(name, access)| DatabaseScope { name: (*name).to_owned(), access: *access })
                .collect(),
            http_apis: strings(self.http_apis),
            scopes: self
                .scopes
                .iter()
                .map(|(kind, name, access)| {
                    ((*kind).to_owned(), vec![NamedScope { name: (*name).to_owned(), access: *access }])
                })
                .collect(),
        }
    }
}
