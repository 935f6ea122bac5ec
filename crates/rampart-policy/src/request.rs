//! What a caller attempts ([`Request`]) and, when it is refused, what it lacked
//! ([`Permission`]).
//!
//! A request is a tool call or one resource access inside a tool call. Toolboxes ask for
//! resource accesses with the same policy the pipeline uses for tool calls, so resource
//! scopes are checked in one place rather than each toolbox inventing its own.

use std::fmt;

use serde::Serialize;

use crate::model::Access;

/// One thing a principal attempts, checked by [`crate::Policy::decide`].
///
/// Names are matched exactly as given (case-sensitive). Filesystem paths must already be
/// normalized and absolute: the caller resolves `.`, `..` and symlinks (a toolbox knows its
/// root and the filesystem; the policy does not do IO). A path that is not absolute or
/// still has a `.`, `..` or empty component is always denied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    /// Calling the tool `name` (`tools/call`), or seeing it in `tools/list`.
    Tool {
        /// The tool name, e.g. `read_file`.
        name: String,
    },
    /// Reading or changing the file or directory at `path`.
    Fs {
        /// A normalized absolute path, e.g. `/srv/data/report.csv`.
        path: String,
        /// `Read` to look, `ReadWrite` to create, write, move or delete.
        access: Access,
    },
    /// Running the command `name` (the program name, not its arguments).
    Command {
        /// The command name, e.g. `git`.
        name: String,
    },
    /// Querying (`Read`) or changing (`ReadWrite`) the configured database `name`.
    Database {
        /// The configured database name, e.g. `analytics`.
        name: String,
        /// `Read` for queries, `ReadWrite` for statements that modify.
        access: Access,
    },
    /// Sending a request to the configured HTTP API `name`.
    HttpApi {
        /// The configured API name, e.g. `github`.
        name: String,
    },
}

impl Request {
    /// Calling the tool `name`.
    pub fn tool(name: impl Into<String>) -> Self {
        Self::Tool { name: name.into() }
    }

    /// `access` on the normalized absolute `path`.
    pub fn fs(path: impl Into<String>, access: Access) -> Self {
        Self::Fs { path: path.into(), access }
    }

    /// Running the command `name`.
    pub fn command(name: impl Into<String>) -> Self {
        Self::Command { name: name.into() }
    }

    /// `access` on the database `name`.
    pub fn database(name: impl Into<String>, access: Access) -> Self {
        Self::Database { name: name.into(), access }
    }

    /// Calling the HTTP API `name`.
    pub fn http_api(name: impl Into<String>) -> Self {
        Self::HttpApi { name: name.into() }
    }

    /// The permission this request needs, as a deny names it. For a filesystem path that
    /// no grant can cover, [`Permission::FsPath`] says why.
    pub fn permission(&self) -> Permission {
        match self {
            Self::Tool { name } => Permission::Tool { name: name.clone() },
            Self::Fs { path, access } => match path_problem(path) {
                Some(problem) => Permission::FsPath { path: path.clone(), access: *access, problem },
                None => Permission::Fs { path: path.clone(), access: *access },
            },
            Self::Command { name } => Permission::Command { name: name.clone() },
            Self::Database { name, access } => Permission::Database { name: name.clone(), access: *access },
            Self::HttpApi { name } => Permission::HttpApi { name: name.clone() },
        }
    }

    /// The kind, name and access, borrowed, for matching against rules.
    pub(crate) fn subject(&self) -> Subject<'_> {
        match self {
            Self::Tool { name } => Subject { kind: Kind::Tool, name, access: None },
            Self::Fs { path, access } => Subject { kind: Kind::Fs, name: path, access: Some(*access) },
            Self::Command { name } => Subject { kind: Kind::Command, name, access: None },
            Self::Database { name, access } => Subject { kind: Kind::Database, name, access: Some(*access) },
            Self::HttpApi { name } => Subject { kind: Kind::HttpApi, name, access: None },
        }
    }
}

impl fmt::Display for Request {
    /// `tool 'read_file'`, `fs read-write on '/srv/out/a'`, `command 'git'`,
    /// `database read on 'analytics'`, `HTTP API 'github'`; names escaped as in
    /// [`Permission`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tool { name } => write!(f, "tool '{}'", name.escape_debug()),
            Self::Fs { path, access } => write!(f, "fs {access} on '{}'", path.escape_debug()),
            Self::Command { name } => write!(f, "command '{}'", name.escape_debug()),
            Self::Database { name, access } => write!(f, "database {access} on '{}'", name.escape_debug()),
            Self::HttpApi { name } => write!(f, "HTTP API '{}'", name.escape_debug()),
        }
    }
}

/// What a denied request lacked, in words a person can act on: the `missing` of
/// [`crate::Decision::Deny`].
///
/// `Display` gives e.g. `tool 'write_file'`, `fs read-write on '/etc/passwd'`,
/// `command 'rm'`, `database read-write on 'analytics'`, `HTTP API 'github'`. Names are
/// escaped (`\n`, `\'`), so a hostile name cannot forge lines in a log or a tool error.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Permission {
    /// A `tools` grant matching `name`.
    Tool {
        /// The tool name.
        name: String,
    },
    /// An `fs` scope matching `path` with at least `access`.
    Fs {
        /// The normalized absolute path.
        path: String,
        /// The access requested.
        access: Access,
    },
    /// No grant can allow this path: it is not a normalized absolute path.
    FsPath {
        /// The path as given.
        path: String,
        /// The access requested.
        access: Access,
        /// What is wrong with the path.
        problem: PathProblem,
    },
    /// A `commands` grant matching `name`.
    Command {
        /// The command name.
        name: String,
    },
    /// A `databases` scope matching `name` with at least `access`.
    Database {
        /// The database name.
        name: String,
        /// The access requested.
        access: Access,
    },
    /// An `http_apis` grant matching `name`.
    HttpApi {
        /// The API name.
        name: String,
    },
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tool { name } => write!(f, "tool '{}'", name.escape_debug()),
            Self::Fs { path, access } => write!(f, "fs {access} on '{}'", path.escape_debug()),
            Self::FsPath { path, access, problem } => {
                write!(f, "fs {access} on '{}', which no grant allows: {problem}", path.escape_debug())
            }
            Self::Command { name } => write!(f, "command '{}'", name.escape_debug()),
            Self::Database { name, access } => write!(f, "database {access} on '{}'", name.escape_debug()),
            Self::HttpApi { name } => write!(f, "HTTP API '{}'", name.escape_debug()),
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
    Fs,
    Command,
    Database,
    HttpApi,
}

impl Kind {
    /// The `[roles.NAME]` key that holds grants of this kind.
    pub(crate) fn field(self) -> &'static str {
        match self {
            Self::Tool => "tools",
            Self::Fs => "fs",
            Self::Command => "commands",
            Self::Database => "databases",
            Self::HttpApi => "http_apis",
        }
    }
}

/// A request's kind, name and access, borrowed: what rules are matched against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub(crate) kind: Kind,
    pub(crate) name: &'a str,
    pub(crate) access: Option<Access>,
}
