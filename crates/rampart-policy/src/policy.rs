//! [`Policy`]: the configuration validated and compiled (built-ins merged, globs compiled,
//! includes resolved), and the decisions it makes.
//!
//! Compilation does all the work that can fail, once, at start-up; deciding is then a walk
//! over precomputed role closures that cannot fail and never panics. (A rule's glob is
//! parsed at start-up and turned into a regex the first time it is checked, which cannot
//! fail for a parsed pattern of bounded length.)

use std::{collections::BTreeMap, sync::OnceLock};

use globset::{Glob, GlobBuilder, GlobMatcher};

use crate::builtin::BUILTIN_ROLES;
use crate::decision::{Decision, Grant, Rule};
use crate::explain::{self, Explanation};
use crate::model::{PolicyConfig, RoleConfig};
use crate::request::{Kind, Permission, Subject, path_problem, valid_scope_kind};
use rampart_core::Request;

/// Why a [`PolicyConfig`] was refused by [`Policy::new`]. Each names the role and the
/// offending entry so the operator can find it in `rampart.toml`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A role name with characters other than ASCII letters, digits, `-` and `_`.
    #[error("role name {name:?} is not valid: use ASCII letters, digits, '-' and '_'")]
    InvalidRoleName {
        /// The name as written.
        name: String,
    },
    /// `includes` names a role that is neither built in nor configured.
    #[error("role '{role}' includes '{include}', which is not a defined role (defined: {})", .defined.join(", "))]
    UnknownInclude {
        /// The including role.
        role: String,
        /// The unknown name.
        include: String,
        /// Every defined role, sorted.
        defined: Vec<String>,
    },
    /// Roles that include each other; the cycle starts and ends with the same role.
    #[error("roles include each other in a cycle: {}", .cycle.join(" -> "))]
    IncludeCycle {
        /// The roles of the cycle, e.g. `["ops", "writer", "ops"]`.
        cycle: Vec<String>,
    },
    /// A `scopes` key that cannot name a scope kind.
    #[error(
        "role '{role}': scope kind {kind:?} is not valid: use 1-32 of a-z, 0-9, '_' and '-' (or \"*\" for every kind)"
    )]
    InvalidScopeKind {
        /// The role whose table holds it.
        role: String,
        /// The kind as written.
        kind: String,
    },
    /// A pattern that is not a valid glob, or not usable for its kind.
    #[error("role '{role}': {field} pattern {pattern:?} is not valid: {reason}")]
    InvalidPattern {
        /// The role whose table holds the pattern.
        role: String,
        /// The key of the table: `tools`, `fs`, `commands`, `databases`, `http_apis`.
        field: &'static str,
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it (globset's message for syntax errors).
        reason: String,
    },
}

/// The compiled, deny-by-default role-based access policy. Cheap to share (`Send + Sync`);
/// deciding does no IO and allocates only for the returned [`Decision`].
#[derive(Debug, Clone)]
pub struct Policy {
    /// Every role, built-in and configured, sorted by name.
    roles: Vec<CompiledRole>,
    /// Role name -> position in `roles`.
    index: BTreeMap<String, usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRole {
    pub(crate) name: String,
    /// The merged table (built-in grants first, then the configuration's).
    config: RoleConfig,
    pub(crate) rules: Vec<CompiledRule>,
    /// The role itself, then every role it includes transitively, breadth first.
    pub(crate) reach: Vec<Reach>,
}

/// A role reached from another through `includes`.
#[derive(Debug, Clone)]
pub(crate) struct Reach {
    /// Position in [`Policy::roles`].
    pub(crate) role: usize,
    /// The shortest include chain, from the starting role to this one, both included.
    pub(crate) chain: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub(crate) rule: Rule,
    /// The rule's pattern, parsed (so a bad one is refused with the policy).
    glob: Glob,
    /// `glob` as a regex, built the first time a request of the rule's kind is checked:
    /// building every rule's at start was ~6 % of a stdio cold start, and most rules are
    /// never checked by a given process.
    matcher: OnceLock<GlobMatcher>,
}

/// How one rule relates to one request of its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleMatch {
    Allows,
    /// The pattern matches, but the rule grants `read` and the request is `read-write`.
    AccessTooNarrow,
    PatternDoesNotMatch,
}

impl CompiledRule {
    /// `None` when the rule is of another kind than the request.
    pub(crate) fn check(&self, subject: &Subject<'_>) -> Option<RuleMatch> {
        if !self.rule.same_kind(subject) {
            return None;
        }
        let matcher = self.matcher.get_or_init(|| self.glob.compile_matcher());
        Some(if !matcher.is_match(subject.name) {
            RuleMatch::PatternDoesNotMatch
        } else if self.rule.access_covers(subject) {
            RuleMatch::Allows
        } else {
            RuleMatch::AccessTooNarrow
        })
    }
}

/// One role visited while deciding, and the principal's role it was reached from.
pub(crate) struct Visit<'a> {
    pub(crate) principal_role: &'a str,
    pub(crate) role: &'a CompiledRole,
}

impl Policy {
    /// Validates and compiles `config`: merges it into the built-in roles (a table with a
    /// built-in name adds to it), compiles every glob, and resolves `includes`.
    ///
    /// # Errors
    /// [`PolicyError`]: an invalid role name, an invalid pattern (naming the role and the
    /// pattern), an include of an undefined role, or an include cycle (naming its roles).
    pub fn new(config: &PolicyConfig) -> Result<Self, PolicyError> {
        let merged = merge(config)?;
        let names: Vec<&str> = merged.keys().map(String::as_str).collect();
        let index: BTreeMap<String, usize> = merged.keys().enumerate().map(|(i, name)| (name.clone(), i)).collect();
        let edges = include_edges(&merged, &index)?;
        if let Some(cycle) = find_cycle(&edges) {
            return Err(PolicyError::IncludeCycle { cycle: cycle.iter().map(|&i| names[i].to_owned()).collect() });
        }
        let mut roles = Vec::with_capacity(merged.len());
        for (i, (name, table)) in merged.iter().enumerate() {
            roles.push(CompiledRole {
                name: name.clone(),
                config: table.clone(),
                rules: compile_rules(name, table)?,
                reach: reach_from(i, &edges, &names),
            });
        }
        Ok(Self { roles, index })
    }

    /// Whether a principal holding `roles` may make `request`: allowed when a rule of one
    /// of the roles, or of a role they include, covers it; denied otherwise, naming the
    /// missing permission. Unknown role names grant nothing (see [`Self::unknown_roles`]).
    ///
    /// The grant reported is the first found: the principal's roles in the order given,
    /// each followed by the roles it includes (breadth first), each role's rules in table
    /// order.
    pub fn decide(&self, roles: &[String], request: &Request<'_>) -> Decision {
        match self.find(roles, &Subject::of(request)) {
            Some((visit, rule)) => Decision::Allow {
                grant: Grant {
                    role: visit.role.name.clone(),
                    principal_role: visit.principal_role.to_owned(),
                    rule: rule.rule.clone(),
                },
            },
            None => Decision::Deny { missing: Permission::of(request) },
        }
    }

    /// Whether [`Self::decide`] would allow `request`, without building the decision:
    /// what the pipeline asks for every tool it lists and every call. Does not allocate.
    pub fn allows(&self, roles: &[String], request: &Request<'_>) -> bool {
        self.find(roles, &Subject::of(request)).is_some()
    }

    /// [`Self::decide`] with the reasoning, for `rampart policy explain`: the roles
    /// expanded through their includes, and for a deny the closest rules that did not
    /// match and the roles that would allow the request.
    pub fn explain(&self, roles: &[String], request: &Request<'_>) -> Explanation {
        explain::explain(self, roles, request)
    }

    /// The names in `roles` that are not defined roles, each once, in the order given:
    /// such names grant nothing, and callers should warn about them.
    pub fn unknown_roles(&self, roles: &[String]) -> Vec<String> {
        let mut unknown: Vec<String> = Vec::new();
        for role in roles {
            if !self.index.contains_key(role) && !unknown.contains(role) {
                unknown.push(role.clone());
            }
        }
        unknown
    }

    /// Every defined role, built-in and configured, sorted by name.
    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().map(|role| role.name.as_str())
    }

    /// Every role as it is in force: the built-in tables with the configuration's merged
    /// in, and the configured roles; for `rampart config check`.
    pub fn effective_config(&self) -> PolicyConfig {
        self.roles.iter().map(|role| (role.name.clone(), role.config.clone())).collect()
    }

    pub(crate) fn role(&self, name: &str) -> Option<&CompiledRole> {
        self.index.get(name).and_then(|&i| self.roles.get(i))
    }

    /// Every role visited for `roles`, in decision order (duplicates included).
    pub(crate) fn visits<'a>(&'a self, roles: &'a [String]) -> impl Iterator<Item = Visit<'a>> {
        roles.iter().filter_map(|name| self.role(name).map(|role| (name, role))).flat_map(move |(name, start)| {
            start
                .reach
                .iter()
                .filter_map(move |reach| self.roles.get(reach.role).map(|role| Visit { principal_role: name, role }))
        })
    }

    /// The first rule that allows `subject`, and where it was found. A filesystem path
    /// that is not normalized and absolute is never allowed, whatever the rules say.
    pub(crate) fn find<'a>(
        &'a self,
        roles: &'a [String],
        subject: &Subject<'_>,
    ) -> Option<(Visit<'a>, &'a CompiledRule)> {
        if subject.kind == Kind::Fs && path_problem(subject.name).is_some() {
            return None;
        }
        self.visits(roles).find_map(|visit| {
            let rule = visit.role.rules.iter().find(|rule| rule.check(subject) == Some(RuleMatch::Allows))?;
            Some((visit, rule))
        })
    }
}

/// The built-in roles with `config` merged in.
fn merge(config: &PolicyConfig) -> Result<BTreeMap<String, RoleConfig>, PolicyError> {
    let mut merged: BTreeMap<String, RoleConfig> =
        BUILTIN_ROLES.iter().map(|builtin| (builtin.name.to_owned(), builtin.to_config())).collect();
    for (name, table) in config {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(PolicyError::InvalidRoleName { name: name.clone() });
        }
        let role = merged.entry(name.clone()).or_default();
        if table.description.is_some() {
            role.description.clone_from(&table.description);
        }
        role.includes.extend_from_slice(&table.includes);
        role.tools.extend_from_slice(&table.tools);
        role.resources.extend_from_slice(&table.resources);
        role.prompts.extend_from_slice(&table.prompts);
        role.fs.extend_from_slice(&table.fs);
        role.commands.extend_from_slice(&table.commands);
        role.databases.extend_from_slice(&table.databases);
        role.http_apis.extend_from_slice(&table.http_apis);
        for (kind, scopes) in &table.scopes {
            if kind != "*" && !valid_scope_kind(kind) {
                return Err(PolicyError::InvalidScopeKind { role: name.clone(), kind: kind.clone() });
            }
            role.scopes.entry(kind.clone()).or_default().extend_from_slice(scopes);
        }
    }
    Ok(merged)
}

/// For each role (by position), the positions of the roles it includes.
fn include_edges(
    merged: &BTreeMap<String, RoleConfig>,
    index: &BTreeMap<String, usize>,
) -> Result<Vec<Vec<usize>>, PolicyError> {
    let mut edges = Vec::with_capacity(merged.len());
    for (role, table) in merged {
        let mut targets = Vec::with_capacity(table.includes.len());
        for include in &table.includes {
            let Some(&target) = index.get(include) else {
                return Err(PolicyError::UnknownInclude {
                    role: role.clone(),
                    include: include.clone(),
                    defined: merged.keys().cloned().collect(),
                });
            };
            targets.push(target);
        }
        edges.push(targets);
    }
    Ok(edges)
}

/// A cycle in the include graph, as positions, first and last the same; `None` when the
/// graph is acyclic. Iterative depth-first search, so a long include chain cannot overflow
/// the stack.
fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let mut marks = vec![Mark::New; edges.len()];
    for start in 0..edges.len() {
        if marks[start] != Mark::New {
            continue;
        }
        marks[start] = Mark::OnStack;
        // (role, how many of its includes have been followed)
        let mut stack = vec![(start, 0_usize)];
        while let Some((node, followed)) = stack.last_mut() {
            let node = *node;
            let Some(&next) = edges[node].get(*followed) else {
                marks[node] = Mark::Done;
                stack.pop();
                continue;
            };
            *followed += 1;
            match marks[next] {
                Mark::New => {
                    marks[next] = Mark::OnStack;
                    stack.push((next, 0));
                }
                Mark::OnStack => {
                    let from = stack.iter().position(|&(role, _)| role == next).unwrap_or(0);
                    let mut cycle: Vec<usize> = stack[from..].iter().map(|&(role, _)| role).collect();
                    cycle.push(next);
                    return Some(cycle);
                }
                Mark::Done => {}
            }
        }
    }
    None
}

/// The role at `start`, then every role it includes transitively (each once, breadth
/// first, with its shortest include chain).
fn reach_from(start: usize, edges: &[Vec<usize>], names: &[&str]) -> Vec<Reach> {
    let mut seen = vec![false; edges.len()];
    seen[start] = true;
    let mut reach = vec![Reach { role: start, chain: vec![names[start].to_owned()] }];
    let mut next = 0;
    while let Some(current) = reach.get(next) {
        let (role, chain) = (current.role, current.chain.clone());
        for &included in &edges[role] {
            if !seen[included] {
                seen[included] = true;
                let mut longer = chain.clone();
                longer.push(names[included].to_owned());
                reach.push(Reach { role: included, chain: longer });
            }
        }
        next += 1;
    }
    reach
}

/// Every entry of `table` as a rule with its compiled glob, in table order.
fn compile_rules(role: &str, table: &RoleConfig) -> Result<Vec<CompiledRule>, PolicyError> {
    let rules = (table.tools.iter().map(|p| Rule::Tool { pattern: p.clone() }))
        .chain(table.resources.iter().map(|p| Rule::Resource { pattern: p.clone() }))
        .chain(table.prompts.iter().map(|p| Rule::Prompt { pattern: p.clone() }))
        .chain(table.fs.iter().map(|s| Rule::Fs { pattern: s.path.clone(), access: s.access }))
        .chain(table.commands.iter().map(|p| Rule::Command { pattern: p.clone() }))
        .chain(table.databases.iter().map(|s| Rule::Database { pattern: s.name.clone(), access: s.access }))
        .chain(table.http_apis.iter().map(|p| Rule::HttpApi { pattern: p.clone() }))
        .chain(table.scopes.iter().flat_map(|(kind, scopes)| {
            scopes.iter().map(|s| Rule::Scope { kind: kind.clone(), pattern: s.name.clone(), access: s.access })
        }));
    rules.map(|rule| Ok(CompiledRule { glob: parse_glob(role, &rule)?, matcher: OnceLock::new(), rule })).collect()
}

/// Longest pattern a rule may have, in bytes (a path's `PATH_MAX`): its regex, built on
/// first use, then stays far below globset's size limit, past which building it panics.
const MAX_PATTERN_LEN: usize = 4096;

/// The glob of `rule`. In filesystem and resource globs `*` and `?` do not match `/`
/// (only `**` crosses components); in name globs they match any character.
fn parse_glob(role: &str, rule: &Rule) -> Result<Glob, PolicyError> {
    let kind = rule.kind();
    let pattern = rule.pattern();
    let invalid = |reason: String| PolicyError::InvalidPattern {
        role: role.to_owned(),
        field: kind.field(),
        pattern: pattern.to_owned(),
        reason,
    };
    if pattern.is_empty() {
        return Err(invalid("the pattern is empty".into()));
    }
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(invalid(format!("the pattern is longer than {MAX_PATTERN_LEN} bytes")));
    }
    if kind == Kind::Fs {
        if !(pattern.starts_with('/') || pattern.starts_with("**")) {
            return Err(invalid("an fs pattern must be an absolute path (start with '/') or start with '**'".into()));
        }
        if pattern.split('/').any(|component| component == "..") {
            return Err(invalid("an fs pattern cannot have a '..' component".into()));
        }
    }
    GlobBuilder::new(pattern)
        .literal_separator(matches!(kind, Kind::Fs | Kind::Resource))
        .empty_alternates(true)
        .build()
        .map_err(|error| invalid(error.kind().to_string()))
}
