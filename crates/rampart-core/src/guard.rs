//! The security hooks of the pipeline: who may see and call what (authorization), whether
//! a request may run at all now (audit health, rate limits), and the record of what
//! happened (audit). `rampart-core` defines the hooks; `rampart-server` implements them
//! with `rampart-policy` and `rampart-audit`, so every toolbox gets them without knowing
//! they exist.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Caller, Request};

/// A refusal by policy, naming what was missing in words a person can act on, e.g.
/// `tool 'write_file'` or `fs read-write on '/etc/passwd'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("permission denied: {missing}")]
pub struct Denied {
    /// The missing permission.
    pub missing: String,
}

/// Why a request may not run now, whatever the policy says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The audit log cannot be written and audit fails closed.
    #[error("the audit log is unavailable, so calls are refused (audit fails closed)")]
    AuditUnavailable,
    /// A rate limit or concurrency cap was hit.
    #[error("rate limited: retry after {retry_after_ms} ms")]
    RateLimited {
        /// When to retry, ms.
        retry_after_ms: u64,
    },
}

/// Permission to run one request, held for its duration: it may carry a concurrency
/// permit (released on drop) and a time limit for the call.
#[derive(Default)]
pub struct Admission {
    /// Dropped when the request ends (e.g. a semaphore permit).
    pub permit: Option<Box<dyn std::any::Any + Send + Sync>>,
    /// The longest the call may run.
    pub timeout: Option<std::time::Duration>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").field("permit", &self.permit.is_some()).field("timeout", &self.timeout).finish()
    }
}

/// What authorization decided about a request, as records say it: `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The request was let through to the tool (or handled).
    Allow,
    /// The request was refused before reaching a tool (policy, authentication, session).
    Deny,
}

impl Decision {
    /// The serialized name: `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

/// How a request ended, as records and metrics say it (snake case: `ok`, `tool_error`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Served.
    Ok,
    /// The tool ran and reported an error (`isError`).
    ToolError,
    /// Refused by policy (or a session of another principal).
    Denied,
    /// Refused before running: the audit log is down, or a request limit (body read
    /// timeout) was hit.
    Refused,
    /// Refused by a rate limit or concurrency cap.
    RateLimited,
    /// Stopped by the per-call time limit.
    TimedOut,
    /// Failed: unknown name, bad parameters, internal error.
    Error,
    /// Cancelled by the client.
    Cancelled,
    /// Authentication failed (method `auth`).
    AuthFailed,
}

impl Outcome {
    /// The serialized name, e.g. `tool_error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ToolError => "tool_error",
            Self::Denied => "denied",
            Self::Refused => "refused",
            Self::RateLimited => "rate_limited",
            Self::TimedOut => "timed_out",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
            Self::AuthFailed => "auth_failed",
        }
    }
}

/// One request, as the pipeline reports it to the audit hook.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    /// Who, over what, from where.
    pub caller: Caller,
    /// JSON-RPC request id.
    pub request_id: Option<String>,
    /// The task the call ran as, or the task a `tasks/*` request was about.
    pub task: Option<String>,
    /// The distributed trace the request was part of ([`crate::CallContext::trace_id`]).
    pub trace_id: Option<String>,
    /// MCP method, e.g. `tools/call`.
    pub method: String,
    /// Tool or prompt name, or resource URI.
    pub target: Option<String>,
    /// The toolbox that served the request, once it was found (`Toolbox::name`).
    pub toolbox: Option<String>,
    /// Arguments as received (the audit hook redacts them).
    pub arguments: Value,
    /// What authorization decided.
    pub decision: Decision,
    /// What happened.
    pub outcome: Outcome,
    /// Detail: the missing permission, the error.
    pub detail: Option<String>,
    /// Time spent, ms.
    pub duration_ms: f64,
}

/// The pipeline's security hooks.
#[async_trait]
pub trait Guard: Send + Sync {
    /// Whether `caller` may make `request`: see or call a tool, see or read a resource,
    /// see or get a prompt, touch a typed scope.
    ///
    /// # Errors
    /// [`Denied`] naming the missing permission.
    fn authorize(&self, caller: &Caller, request: &Request<'_>) -> Result<(), Denied>;

    /// Whether a request may run now (before any work): audit health, rate limits,
    /// concurrency caps. `target` is the tool (or prompt, resource) when there is one.
    ///
    /// # Errors
    /// [`Refusal`].
    async fn admit(&self, caller: &Caller, method: &str, target: Option<&str>) -> Result<Admission, Refusal>;

    /// Records a finished request. With audit failing closed, an error here withholds
    /// the result from the client.
    ///
    /// # Errors
    /// [`Refusal::AuditUnavailable`].
    async fn record(&self, record: CallRecord) -> Result<(), Refusal>;
}

/// No security: everything allowed, nothing recorded. Only for tests (this crate's, and
/// others' through the `test-support` feature): a pipeline always needs a real guard.
#[cfg(any(test, feature = "test-support"))]
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenGuard;

#[cfg(any(test, feature = "test-support"))]
#[async_trait]
impl Guard for OpenGuard {
    fn authorize(&self, _: &Caller, _: &Request<'_>) -> Result<(), Denied> {
        Ok(())
    }
    async fn admit(&self, _: &Caller, _: &str, _: Option<&str>) -> Result<Admission, Refusal> {
        Ok(Admission::default())
    }
    async fn record(&self, _: CallRecord) -> Result<(), Refusal> {
        Ok(())
    }
}
