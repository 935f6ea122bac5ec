//! The security hooks of the pipeline: who may see and call what (authorization), whether
//! a request may run at all now (audit health, rate limits), and the record of what
//! happened (audit). `rampart-core` defines the hooks; `rampart-server` implements them
//! with `rampart-policy` and `rampart-audit`, so every toolbox gets them without knowing
//! they exist.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::Caller;

/// Read, or read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Read only.
    Read,
    /// Read and write.
    ReadWrite,
}

/// A typed resource scope a toolbox asks about before touching it. Toolboxes use these
/// rather than inventing their own permission checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resource {
    /// A filesystem path (absolute, normalised by the toolbox).
    Fs {
        /// The path.
        path: String,
        /// Wanted access.
        access: Access,
    },
    /// A command the exec toolbox would run.
    Command {
        /// Program name.
        name: String,
    },
    /// A configured database.
    Database {
        /// Database name.
        name: String,
        /// Wanted access.
        access: Access,
    },
    /// A configured HTTP API.
    HttpApi {
        /// API name.
        name: String,
    },
}

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

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Served.
    Ok,
    /// The tool ran and reported an error (`isError`).
    ToolError,
    /// Refused by policy.
    Denied,
    /// Refused before running (audit down).
    Refused,
    /// Refused by a rate limit or concurrency cap.
    RateLimited,
    /// Stopped by the per-call time limit.
    TimedOut,
    /// Failed: unknown name, bad parameters, internal error.
    Error,
    /// Cancelled by the client.
    Cancelled,
}

/// One request, as the pipeline reports it to the audit hook.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    /// Who, over what, from where.
    pub caller: Caller,
    /// JSON-RPC request id.
    pub request_id: Option<String>,
    /// MCP method, e.g. `tools/call`.
    pub method: String,
    /// Tool or prompt name, or resource URI.
    pub target: Option<String>,
    /// Arguments as received (the audit hook redacts them).
    pub arguments: Value,
    /// Whether policy allowed it.
    pub allowed: bool,
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
    /// Whether `caller` may see and call tool `name`.
    ///
    /// # Errors
    /// [`Denied`] naming the missing permission.
    fn check_tool(&self, caller: &Caller, name: &str) -> Result<(), Denied>;

    /// Whether `caller` may touch `resource`.
    ///
    /// # Errors
    /// [`Denied`] naming the missing permission.
    fn check_resource(&self, caller: &Caller, resource: &Resource) -> Result<(), Denied>;

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

/// No security: everything allowed, nothing recorded. For tests and the library's
/// simplest use; `rampart serve` always installs a real guard.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenGuard;

#[async_trait]
impl Guard for OpenGuard {
    fn check_tool(&self, _: &Caller, _: &str) -> Result<(), Denied> {
        Ok(())
    }
    fn check_resource(&self, _: &Caller, _: &Resource) -> Result<(), Denied> {
        Ok(())
    }
    async fn admit(&self, _: &Caller, _: &str, _: Option<&str>) -> Result<Admission, Refusal> {
        Ok(Admission::default())
    }
    async fn record(&self, _: CallRecord) -> Result<(), Refusal> {
        Ok(())
    }
}
