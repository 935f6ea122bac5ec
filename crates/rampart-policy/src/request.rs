//! When a [`Request`] (defined in `rampart-core`, shared by the pipeline, the toolboxes
//! and this crate) is refused, what it lacked: [`Permission`]; and the borrowed view of a
//! request that rules are matched against.
//!
//! A request is a tool call, an MCP resource or prompt, or one typed scope touched inside
//! a tool call. Toolboxes ask about scopes with the same policy the pipeline uses for
//! tools, so every permission is checked in one place rather than each toolbox inventing
//! its own.

use std::fmt;

use rampart_core::{Access, Request};
use serde::Serialize;

/// What a denied request lacked, in words a person can act on: the `missing` of
/// [`crate::Decision::Deny`].
///
/// `Display` gives e.g. `tool 'write_file'`, `fs read-write on '/etc/passwd'`,
/// `resource 'file:///a'`, `command 'rm'`; names are escaped (`\n`, `\'`), so a hostile
/// name cannot forge lines in a log or a tool error. Serialized as the request it would
/// need (`{"kind": "tool", "name": …}`), or `{"kind": "fs_path", …}` for a path no grant
/// can allow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Permission {
    /// No grant can allow this path: it is not a normalized absolute path.
    FsPath {
        /// The path as given.
        path: String,
        /// The access requested.
        access: Access,
        /// What is wrong with the path.
        problem: PathProblem,
    },
    /// A grant covering this request: a `tools`, `resources`, `prompts`, `fs`,
    /// `commands`, `databases` or `http_apis` entry.
    #[serde(untagged)]
    Grant(Request<'static>),
}

impl Permission {
    /// The permission `request` needs, as a deny names it. For a filesystem path that no
    /// grant can cover, [`Permission::FsPath`] says why.
    pub fn of(request: &Request<'_>) -> Self {
        if let Request::Fs { path, access } = request
            && let Some(problem) = path_problem(path)
        {
            return Self::FsPath { path: path.to_string(), access: *access, problem };
        }
        Self::Grant(request.clone().into_owned())
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Grant(request) => request.fmt(f),
            Self::FsPath { path, access, problem } => {
                write!(f, "fs {access} on '{}', which no grant allows: {problem}", path.escape_debug())
            }
        }
    }
}

/// Why a filesystem path cannot be granted: the caller must pass a normalized absolute
/// path (and resolve symlinks) before asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathProblem {
    /// The path does not start with `/`.
    NotAbsolute,
    /// A `..` component, which could climb out of any granted tree.
    ParentComponent,
    /// A `.` or empty component (`/a/./b`, `/a//b`, `/a/`): not normalized.
    NotNormalized,
    /// A NUL byte, which no filesystem path contains.
    Nul,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAbsolute => "the path is not absolute",
            Self::ParentComponent => "the path has a '..' component; pass the normalized absolute path",
            Self::NotNormalized => "the path has a '.' or empty component; pass the normalized absolute path",
            Self::Nul => "the path contains a NUL byte",
        })
    }
}

/// What is wrong with `path` as an fs request, or `None` when it is a normalized absolute
/// path (`/` itself included).
pub(crate) fn path_problem(path: &str) -> Option<PathProblem> {
    let Some(rest) = path.strip_prefix('/') else {
        return Some(PathProblem::NotAbsolute);
    };
    if path.contains('\0') {
        return Some(PathProblem::Nul);
    }
    if rest.is_empty() {
        return None;
    }
    if rest.split('/').any(|c| c == "..") {
        return Some(PathProblem::ParentComponent);
    }
    if rest.split('/').any(|c| c.is_empty() || c == ".") {
        return Some(PathProblem::NotNormalized);
    }
    None
}

/// The kinds of grant, one per list of [`crate::RoleConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tool,
    Resource,
    Prompt,
    Fs,
    Command,
    Database,
    HttpApi,
    Scope,
}

impl Kind {
    /// The `[roles.NAME]` key that holds grants of this kind.
    pub(crate) fn field(self) -> &'static str {
        match self {
            Self::Tool => "tools",
            Self::Resource => "resources",
            Self::Prompt => "prompts",
            Self::Fs => "fs",
            Self::Command => "commands",
            Self::Database => "databases",
            Self::HttpApi => "http_apis",
            Self::Scope => "scopes",
        }
    }
}

/// A request's kind, name and access, borrowed: what rules are matched against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub(crate) kind: Kind,
    pub(crate) name: &'a str,
    pub(crate) access: Option<Access>,
    /// The scope kind, for [`Kind::Scope`].
    pub(crate) scope: Option<&'a str>,
}

impl<'a> Subject<'a> {
    /// The kind, name and access of `request`.
    pub(crate) fn of(request: &'a Request<'_>) -> Self {
        let kind = match request {
            Request::Tool { .. } => Kind::Tool,
            Request::Resource { .. } => Kind::Resource,
            Request::Prompt { .. } => Kind::Prompt,
            Request::Fs { .. } => Kind::Fs,
            Request::Command { .. } => Kind::Command,
            Request::Database { .. } => Kind::Database,
            Request::HttpApi { .. } => Kind::HttpApi,
            Request::Scope { .. } => Kind::Scope,
        };
        let scope = match request {
            Request::Scope { kind, .. } if valid_scope_kind(kind) => Some(kind.as_ref()),
            _ => None,
        };
        Self { kind, name: request.name(), access: request.access(), scope }
    }
}

/// Whether `kind` can name a scope kind: 1-32 of `a-z`, `0-9`, `_`, `-`. A request of
/// another kind name matches no grant.
pub(crate) fn valid_scope_kind(kind: &str) -> bool {
    (1..=32).contains(&kind.len())
        && kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}
