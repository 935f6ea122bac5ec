//! The answer of the policy: [`Decision`], and for an allow the [`Grant`] behind it, made
//! of a [`Rule`] and the roles it came from.

use std::fmt;

use serde::Serialize;

use rampart_core::Access;

use crate::request::{Kind, Permission, Subject};

/// The outcome of [`crate::Policy::decide`]. Everything not granted is denied.
///
/// Serialized with an `effect` tag: `{"effect": "allow", "grant": {..}}` or
/// `{"effect": "deny", "missing": {..}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Decision {
    /// A rule of one of the principal's roles (or of a role they include) covers the
    /// request.
    Allow {
        /// The first rule found that covers the request, and where it came from.
        grant: Grant,
    },
    /// No rule covers the request.
    Deny {
        /// What the principal would need; its `Display` is meant for the tool error and
        /// the audit record.
        missing: Permission,
    },
}

impl Decision {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }
}

impl fmt::Display for Decision {
    /// `allow: tools: "read_*" of role 'reader' (reached through 'writer')` or
    /// `deny: missing tool 'write_file'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allow { grant } => write!(f, "allow: {grant}"),
            Self::Deny { missing } => write!(f, "deny: missing {missing}"),
        }
    }
}

/// Why a request was allowed: which rule, held by which role, reached through which of the
/// principal's roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// The role whose table holds the rule.
    pub role: String,
    /// The principal's own role through which `role` was reached: the same as `role`, or
    /// a role that includes it (transitively).
    pub principal_role: String,
    /// The rule that covers the request.
    pub rule: Rule,
}

impl fmt::Display for Grant {
    /// `tools: "read_*" of role 'reader' (reached through 'writer')`; the parenthesis is
    /// left out when the principal holds the role directly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of role '{}'", self.rule, self.role.escape_debug())?;
        if self.principal_role != self.role {
            write!(f, " (reached through '{}')", self.principal_role.escape_debug())?;
        }
        Ok(())
    }
}

/// One entry of a role's table, as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    /// An entry of `tools`.
    Tool {
        /// The glob over tool names.
        pattern: String,
    },
    /// An entry of `resources`.
    Resource {
        /// The glob over resource URIs.
        pattern: String,
    },
    /// An entry of `prompts`.
    Prompt {
        /// The glob over prompt names.
        pattern: String,
    },
    /// An entry of `fs`.
    Fs {
        /// The glob over absolute paths.
        pattern: String,
        /// The access it grants.
        access: Access,
    },
    /// An entry of `commands`.
    Command {
        /// The glob over command names.
        pattern: String,
    },
    /// An entry of `databases`.
    Database {
        /// The glob over database names.
        pattern: String,
        /// The access it grants.
        access: Access,
    },
    /// An entry of `http_apis`.
    HttpApi {
        /// The glob over HTTP API names.
        pattern: String,
    },
    /// An entry of `scopes.KIND`.
    Scope {
        /// The scope kind (`*`: every kind). Serialized as `scope`.
        #[serde(rename = "scope")]
        kind: String,
        /// The glob over names.
        pattern: String,
        /// The access it grants.
        access: Access,
    },
}

impl Rule {
    /// The glob, as written.
    pub fn pattern(&self) -> &str {
        match self {
            Self::Tool { pattern }
            | Self::Resource { pattern }
            | Self::Prompt { pattern }
            | Self::Fs { pattern, .. }
            | Self::Command { pattern }
            | Self::Database { pattern, .. }
            | Self::HttpApi { pattern }
            | Self::Scope { pattern, .. } => pattern,
        }
    }

    /// The access granted, for the kinds that have one (`fs`, `databases`, `scopes`).
    pub fn access(&self) -> Option<Access> {
        match self {
            Self::Fs { access, .. } | Self::Database { access, .. } | Self::Scope { access, .. } => Some(*access),
            Self::Tool { .. }
            | Self::Resource { .. }
            | Self::Prompt { .. }
            | Self::Command { .. }
            | Self::HttpApi { .. } => None,
        }
    }

    pub(crate) fn kind(&self) -> Kind {
        match self {
            Self::Tool { .. } => Kind::Tool,
            Self::Resource { .. } => Kind::Resource,
            Self::Prompt { .. } => Kind::Prompt,
            Self::Fs { .. } => Kind::Fs,
            Self::Command { .. } => Kind::Command,
            Self::Database { .. } => Kind::Database,
            Self::HttpApi { .. } => Kind::HttpApi,
            Self::Scope { .. } => Kind::Scope,
        }
    }

    /// Whether the rule is of `subject`'s kind (for a scope, of its scope kind too).
    pub(crate) fn same_kind(&self, subject: &Subject<'_>) -> bool {
        match self {
            Self::Scope { kind, .. } => subject.scope.is_some_and(|wanted| kind == "*" || kind == wanted),
            _ => self.kind() == subject.kind,
        }
    }

    /// Whether the rule's access covers the subject's (always, for kinds without access;
    /// never when one has an access and the other not, which is a different kind).
    pub(crate) fn access_covers(&self, subject: &Subject<'_>) -> bool {
        match (self.access(), subject.access) {
            (Some(granted), Some(requested)) => granted.satisfies(requested),
            (None, None) => true,
            (Some(_), None) | (None, Some(_)) => false,
        }
    }
}

impl fmt::Display for Rule {
    /// The config key and the pattern, e.g. `tools: "system_*"`,
    /// `fs: "/srv/data/**" (read-write)`, `scopes.notebook: "team-*" (read)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scope { kind, .. } => write!(f, "scopes.{kind}: {:?}", self.pattern())?,
            _ => write!(f, "{}: {:?}", self.kind().field(), self.pattern())?,
        }
        if let Some(access) = self.access() {
            write!(f, " ({access})")?;
        }
        Ok(())
    }
}
