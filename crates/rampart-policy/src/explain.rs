//! [`Explanation`]: a decision with its reasoning, for `rampart policy explain`: which
//! roles the principal has through includes, and for a deny, what came close and which
//! roles would have allowed the request.

use std::fmt;

use serde::Serialize;

use rampart_core::Request;

use crate::decision::{Decision, Rule};
use crate::policy::{Policy, RuleMatch};
use crate::request::{Permission, Subject};

/// At most this many near misses are reported.
const MAX_NEAR_MISSES: usize = 5;

/// What [`Policy::explain`] returns. `Display` gives a multi-line text for a person;
/// `Serialize` gives the same for `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The request explained.
    pub request: Request<'static>,
    /// The decision, exactly as [`Policy::decide`] makes it.
    pub decision: Decision,
    /// Each of the principal's roles, in the order given, with the roles it includes.
    pub roles: Vec<RoleExpansion>,
    /// For a deny: rules of the principal's roles, of the request's kind, that came
    /// closest (a matching pattern with too narrow an access first, then the longest
    /// common prefix with the name). Empty for an allow.
    pub near_misses: Vec<NearMiss>,
    /// For a deny: the defined roles that would allow the request on their own, sorted.
    /// Empty for an allow, and for a path no grant can allow.
    pub allowed_by: Vec<String>,
}

/// One role of the principal, expanded through `includes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleExpansion {
    /// The role name as the principal holds it.
    pub role: String,
    /// Whether it is a defined role; an undefined one grants nothing.
    pub defined: bool,
    /// Every role reached, each as its shortest include chain from `role`: first `[role]`
    /// itself, then e.g. `[writer, reader]`, `[writer, reader, public]`.
    pub reached: Vec<Vec<String>>,
}

/// A rule of the request's kind that did not allow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NearMiss {
    /// The role whose table holds the rule.
    pub role: String,
    /// The principal's role through which `role` was reached.
    pub principal_role: String,
    /// The rule.
    pub rule: Rule,
    /// Why it did not allow the request.
    pub reason: MissReason,
}

/// Why a rule of the right kind did not allow a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissReason {
    /// The pattern does not match the name or path.
    PatternDoesNotMatch,
    /// The pattern matches, but the rule grants `read` and the request is `read-write`.
    AccessTooNarrow,
}

pub(crate) fn explain(policy: &Policy, roles: &[String], request: &Request<'_>) -> Explanation {
    let decision = policy.decide(roles, request);
    let grantable = matches!(&decision, Decision::Deny { missing } if !matches!(missing, Permission::FsPath { .. }));
    let (near_misses, allowed_by) =
        if grantable { (near_misses(policy, roles, request), allowed_by(policy, request)) } else { (vec![], vec![]) };
    let request = request.clone().into_owned();
    Explanation { request, decision, roles: expand(policy, roles), near_misses, allowed_by }
}

fn expand(policy: &Policy, roles: &[String]) -> Vec<RoleExpansion> {
    roles
        .iter()
        .map(|name| RoleExpansion {
            role: name.clone(),
            defined: policy.role(name).is_some(),
            reached: policy
                .role(name)
                .map(|role| role.reach.iter().map(|r| r.chain.clone()).collect())
                .unwrap_or_default(),
        })
        .collect()
}

fn near_misses(policy: &Policy, roles: &[String], request: &Request<'_>) -> Vec<NearMiss> {
    let subject = Subject::of(request);
    let mut scored: Vec<(usize, NearMiss)> = Vec::new();
    for visit in policy.visits(roles) {
        for rule in &visit.role.rules {
            let (score, reason) = match rule.check(&subject) {
                Some(RuleMatch::AccessTooNarrow) => (usize::MAX, MissReason::AccessTooNarrow),
                Some(RuleMatch::PatternDoesNotMatch) => {
                    (closeness(rule.rule.pattern(), subject.name), MissReason::PatternDoesNotMatch)
                }
                Some(RuleMatch::Allows) | None => continue,
            };
            let seen = scored.iter().any(|(_, miss)| miss.role == visit.role.name && miss.rule == rule.rule);
            if score > 0 && !seen {
                let miss = NearMiss {
                    role: visit.role.name.clone(),
                    principal_role: visit.principal_role.to_owned(),
                    rule: rule.rule.clone(),
                    reason,
                };
                scored.push((score, miss));
            }
        }
    }
    scored.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
    scored.into_iter().take(MAX_NEAR_MISSES).map(|(_, miss)| miss).collect()
}

/// The length of the common prefix of `pattern` and `name`, in characters; 0 when that
/// prefix has no letter or digit (a shared `/` says nothing).
fn closeness(pattern: &str, name: &str) -> usize {
    let common: String = pattern.chars().zip(name.chars()).take_while(|(a, b)| a == b).map(|(a, _)| a).collect();
    if common.chars().any(char::is_alphanumeric) { common.chars().count() } else { 0 }
}

fn allowed_by(policy: &Policy, request: &Request<'_>) -> Vec<String> {
    let subject = Subject::of(request);
    policy
        .role_names()
        .map(str::to_owned)
        .filter(|name| policy.find(std::slice::from_ref(name), &subject).is_some())
        .collect()
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "request:  {}", self.request)?;
        writeln!(f, "decision: {}", self.decision)?;
        if self.roles.is_empty() {
            writeln!(f, "roles:    none (everything is denied)")?;
        } else {
            writeln!(f, "roles:")?;
        }
        for expansion in &self.roles {
            write!(f, "{expansion}")?;
        }
        if !self.near_misses.is_empty() {
            writeln!(f, "closest rules that did not match:")?;
            for miss in &self.near_misses {
                writeln!(f, "  {miss}")?;
            }
        }
        if matches!(self.decision, Decision::Deny { .. })
            && !matches!(Permission::of(&self.request), Permission::FsPath { .. })
        {
            match self.allowed_by.as_slice() {
                [] => writeln!(f, "no defined role allows it")?,
                names => writeln!(f, "roles that would allow it: {}", names.join(", "))?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for RoleExpansion {
    /// `  writer` then one line per role reached, with its include chain.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = self.role.escape_debug();
        if !self.defined {
            return writeln!(f, "  {role}: not a defined role, grants nothing");
        }
        writeln!(f, "  {role}")?;
        for chain in &self.reached {
            match chain.as_slice() {
                [] => {}
                [only] => writeln!(f, "    {only}")?,
                [.., last] => writeln!(f, "    {last} (through {})", chain.join(" -> "))?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for NearMiss {
    /// `tools: "read_*" of role 'reader' (reached through 'writer'): the pattern does not
    /// match`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of role '{}'", self.rule, self.role.escape_debug())?;
        if self.principal_role != self.role {
            write!(f, " (reached through '{}')", self.principal_role.escape_debug())?;
        }
        match self.reason {
            MissReason::PatternDoesNotMatch => write!(f, ": the pattern does not match"),
            MissReason::AccessTooNarrow => write!(f, ": grants read only"),
        }
    }
}
