//! What a caller attempts, as authorization judges it: [`Request`], with the [`Access`]
//! it wants. One definition for the pipeline (tools, resources, prompts), the toolboxes
//! (typed scopes: paths, commands, databases, HTTP APIs) and the policy that decides.

use std::{borrow::Cow, fmt};

use serde::{Deserialize, Serialize};

/// An access level, written `read` or `read-write` (in `rampart.toml` and in records).
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

/// One thing a caller attempts. The pipeline asks about tools, resources and prompts;
/// toolboxes ask about the typed scopes they touch (paths, commands, databases, APIs),
/// through [`crate::CallContext::authorize`], so that every permission is checked by one
/// policy.
///
/// Names borrow where they can (the hot path asks for every tool of `tools/list`); use
/// [`Request::into_owned`] to keep one. Names are matched exactly as given
/// (case-sensitive). Filesystem paths must already be normalized and absolute: the
/// toolbox resolves `.`, `..` and symlinks; a path that is not is always denied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request<'a> {
    /// Calling the tool `name` (`tools/call`), or seeing it in `tools/list`.
    Tool {
        /// The tool name, e.g. `read_file`.
        name: Cow<'a, str>,
    },
    /// Reading, subscribing to or listing the MCP resource at `uri`; for a resource
    /// template (listing it, completing its variables), its URI template.
    Resource {
        /// The resource URI, e.g. `file:///srv/notes/a.md`, or a URI template.
        uri: Cow<'a, str>,
    },
    /// Getting, listing or completing the MCP prompt `name`.
    Prompt {
        /// The prompt name.
        name: Cow<'a, str>,
    },
    /// Reading or changing the file or directory at `path`.
    Fs {
        /// A normalized absolute path, e.g. `/srv/data/report.csv`.
        path: Cow<'a, str>,
        /// `Read` to look, `ReadWrite` to create, write, move or delete.
        access: Access,
    },
    /// Running the command `name` (the program name, not its arguments).
    Command {
        /// The command name, e.g. `git`.
        name: Cow<'a, str>,
    },
    /// Querying (`Read`) or changing (`ReadWrite`) the configured database `name`.
    Database {
        /// The configured database name, e.g. `analytics`.
        name: Cow<'a, str>,
        /// `Read` for queries, `ReadWrite` for statements that modify.
        access: Access,
    },
    /// Sending a request to the configured HTTP API `name`.
    HttpApi {
        /// The configured API name, e.g. `github`.
        name: Cow<'a, str>,
    },
    /// `access` on `name`, a resource of a toolbox's own kind (a notebook, a project, a
    /// customer account), granted by a role's `scopes.KIND` list and by no other grant.
    Scope {
        /// The kind, e.g. `notebook`: 1-32 of `a-z`, `0-9`, `_`, `-` (anything else is
        /// never granted). Serialized as `scope` (`kind` is the variant's tag).
        #[serde(rename = "scope")]
        kind: Cow<'a, str>,
        /// The resource's name, e.g. `team-ops`.
        name: Cow<'a, str>,
        /// `Read` to look, `ReadWrite` to change.
        access: Access,
    },
}

impl<'a> Request<'a> {
    /// Calling the tool `name`.
    pub fn tool(name: impl Into<Cow<'a, str>>) -> Self {
        Self::Tool { name: name.into() }
    }

    /// The MCP resource (or resource template) `uri`.
    pub fn resource(uri: impl Into<Cow<'a, str>>) -> Self {
        Self::Resource { uri: uri.into() }
    }

    /// The MCP prompt `name`.
    pub fn prompt(name: impl Into<Cow<'a, str>>) -> Self {
        Self::Prompt { name: name.into() }
    }

    /// `access` on the normalized absolute `path`.
    pub fn fs(path: impl Into<Cow<'a, str>>, access: Access) -> Self {
        Self::Fs { path: path.into(), access }
    }

    /// Running the command `name`.
    pub fn command(name: impl Into<Cow<'a, str>>) -> Self {
        Self::Command { name: name.into() }
    }

    /// `access` on the database `name`.
    pub fn database(name: impl Into<Cow<'a, str>>, access: Access) -> Self {
        Self::Database { name: name.into(), access }
    }

    /// Calling the HTTP API `name`.
    pub fn http_api(name: impl Into<Cow<'a, str>>) -> Self {
        Self::HttpApi { name: name.into() }
    }

    /// `access` on `name`, of the toolbox's own scope kind `kind` (e.g. `notebook`).
    pub fn scope(kind: impl Into<Cow<'a, str>>, name: impl Into<Cow<'a, str>>, access: Access) -> Self {
        Self::Scope { kind: kind.into(), name: name.into(), access }
    }

    /// The name, URI or path the request is about.
    pub fn name(&self) -> &str {
        match self {
            Self::Tool { name }
            | Self::Prompt { name }
            | Self::Command { name }
            | Self::Database { name, .. }
            | Self::HttpApi { name }
            | Self::Scope { name, .. } => name,
            Self::Resource { uri } => uri,
            Self::Fs { path, .. } => path,
        }
    }

    /// The access wanted, for the kinds that have one (`fs`, databases, scopes).
    pub fn access(&self) -> Option<Access> {
        match self {
            Self::Fs { access, .. } | Self::Database { access, .. } | Self::Scope { access, .. } => Some(*access),
            _ => None,
        }
    }

    /// The same request, owning its name.
    pub fn into_owned(self) -> Request<'static> {
        let own = |text: Cow<'a, str>| Cow::Owned(text.into_owned());
        match self {
            Self::Tool { name } => Request::Tool { name: own(name) },
            Self::Resource { uri } => Request::Resource { uri: own(uri) },
            Self::Prompt { name } => Request::Prompt { name: own(name) },
            Self::Fs { path, access } => Request::Fs { path: own(path), access },
            Self::Command { name } => Request::Command { name: own(name) },
            Self::Database { name, access } => Request::Database { name: own(name), access },
            Self::HttpApi { name } => Request::HttpApi { name: own(name) },
            Self::Scope { kind, name, access } => Request::Scope { kind: own(kind), name: own(name), access },
        }
    }
}

impl fmt::Display for Request<'_> {
    /// `tool 'read_file'`, `resource 'file:///a'`, `prompt 'summary'`,
    /// `fs read-write on '/srv/out/a'`, `command 'git'`, `database read on 'analytics'`,
    /// `HTTP API 'github'`, `scope notebook read on 'team'`. Names are escaped (`\n`, `\'`), so a hostile name cannot forge
    /// lines in a log or a tool error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tool { name } => write!(f, "tool '{}'", name.escape_debug()),
            Self::Resource { uri } => write!(f, "resource '{}'", uri.escape_debug()),
            Self::Prompt { name } => write!(f, "prompt '{}'", name.escape_debug()),
            Self::Fs { path, access } => write!(f, "fs {access} on '{}'", path.escape_debug()),
            Self::Command { name } => write!(f, "command '{}'", name.escape_debug()),
            Self::Database { name, access } => write!(f, "database {access} on '{}'", name.escape_debug()),
            Self::HttpApi { name } => write!(f, "HTTP API '{}'", name.escape_debug()),
            Self::Scope { kind, name, access } => {
                write!(f, "scope {} {access} on '{}'", kind.escape_debug(), name.escape_debug())
            }
        }
    }
}
