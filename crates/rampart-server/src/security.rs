//! The pipeline's [`Guard`], made of `rampart-policy` (authorization) and
//! `rampart-audit` (the record of every request).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use jiff::Timestamp;
use rampart_audit::{AuditEvent, AuditLog, Decision as AuditDecision, Outcome as AuditOutcome, Redactor};
use rampart_core::{Access, Admission, CallRecord, Caller, Denied, Guard, Outcome, Refusal, Resource, Transport};

use crate::{limits::Limits, metrics::Metrics};
use rampart_policy::{Access as PolicyAccess, Decision, Policy, Request};

/// Authorization by policy, admission and records by the audit log.
pub struct SecurityGuard {
    policy: Arc<Policy>,
    limits: Arc<Limits>,
    metrics: Arc<Metrics>,
    audit: Option<AuditLog>,
    redactor: Arc<Redactor>,
    /// When the audit sink was last probed while unhealthy (at most once a second).
    last_probe: std::sync::Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for SecurityGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityGuard").field("audit", &self.audit.is_some()).finish_non_exhaustive()
    }
}

fn access(access: Access) -> PolicyAccess {
    match access {
        Access::Read => PolicyAccess::Read,
        Access::ReadWrite => PolicyAccess::ReadWrite,
    }
}

fn denied(decision: Decision) -> Result<(), Denied> {
    match decision {
        Decision::Allow { .. } => Ok(()),
        Decision::Deny { missing } => Err(Denied { missing: missing.to_string() }),
    }
}

/// The transport's name in audit records.
pub(crate) fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Stdio => "stdio",
        Transport::StreamableHttp => "streamable_http",
    }
}

impl SecurityGuard {
    /// A guard over `policy` and `limits`, recording to `audit` (none: audit disabled)
    /// and counting in `metrics`.
    pub fn new(
        policy: Arc<Policy>,
        limits: Arc<Limits>,
        metrics: Arc<Metrics>,
        audit: Option<AuditLog>,
        redactor: Arc<Redactor>,
    ) -> Self {
        Self { policy, limits, metrics, audit, redactor, last_probe: std::sync::Mutex::new(None) }
    }

    /// The rate limits (the HTTP layer throttles failed authentication with them).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The audit log, if enabled.
    pub fn audit(&self) -> Option<&AuditLog> {
        self.audit.as_ref()
    }

    /// Whether the audit log lets requests run: always, unless it fails closed and
    /// cannot be written.
    async fn audit_admits(&self) -> bool {
        let Some(audit) = &self.audit else { return true };
        if audit.policy() != rampart_audit::FailurePolicy::FailClosed || audit.is_healthy() {
            return true;
        }
        let due = {
            let mut last = self.last_probe.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        due && audit.probe().await
    }

    /// Records a failed authentication (no principal).
    pub async fn record_auth_failure(&self, remote_addr: Option<String>, reason: &str, path: &str) {
        let Some(audit) = &self.audit else { return };
        let event = AuditEvent {
            time: Timestamp::now(),
            request_id: None,
            session: None,
            principal: "unauthenticated".into(),
            transport: "streamable_http".into(),
            remote_addr,
            method: "auth".into(),
            tool: Some(path.to_owned()),
            arguments: serde_json::Value::Null,
            decision: AuditDecision::Deny,
            outcome: AuditOutcome::AuthFailed,
            detail: Some(format!("authentication failed: {reason}")),
            duration_us: 0,
        };
        if let Err(error) = audit.record(event).await {
            tracing::warn!(%error, "failed authentication not recorded");
        }
    }

    /// Records an administrative action the server took for the local operator
    /// `principal` (the first-run admin token), redacted like every record: see
    /// [`crate::LocalAudit::record`] for the arguments.
    pub(crate) async fn record_local_action(
        &self,
        principal: &str,
        tool: &str,
        arguments: serde_json::Value,
        result: Result<String, String>,
        started: std::time::Instant,
    ) {
        let Some(audit) = &self.audit else { return };
        let event = crate::local_audit::event(principal, tool, arguments, result, started).redacted(&self.redactor);
        if let Err(error) = audit.record(event).await {
            tracing::error!(%error, tool, "audit record of a local action not written");
        }
    }
}

#[async_trait]
impl Guard for SecurityGuard {
    fn check_tool(&self, caller: &Caller, name: &str) -> Result<(), Denied> {
        // Every call asks this: the allowed answer without building the grant (strings),
        // the full decision only to name what a refusal is missing.
        if self.policy.can_see_tool(&caller.principal.roles, name) {
            return Ok(());
        }
        denied(self.policy.decide(&caller.principal.roles, &Request::tool(name)))
    }

    fn check_resource(&self, caller: &Caller, resource: &Resource) -> Result<(), Denied> {
        let request = match resource {
            Resource::Fs { path, access: wanted } => Request::fs(path.clone(), access(*wanted)),
            Resource::Command { name } => Request::command(name.clone()),
            Resource::Database { name, access: wanted } => Request::database(name.clone(), access(*wanted)),
            Resource::HttpApi { name } => Request::http_api(name.clone()),
        };
        denied(self.policy.decide(&caller.principal.roles, &request))
    }

    /// Rate limits and caps first; then, under fail-closed audit, nothing runs while the
    /// audit log cannot be written (an unhealthy log is probed at most once a second so
    /// that service resumes as soon as the sink answers again).
    async fn admit(&self, caller: &Caller, method: &str, target: Option<&str>) -> Result<Admission, Refusal> {
        let tool = if method == "tools/call" { target } else { None };
        let admission = self.limits.admit(&caller.principal.id, tool)?;
        if self.audit_admits().await { Ok(admission) } else { Err(Refusal::AuditUnavailable) }
    }

    async fn record(&self, record: CallRecord) -> Result<(), Refusal> {
        if record.method == "tools/call" {
            let tool = record.target.as_deref().unwrap_or("-");
            self.metrics.tool_call(tool, record.outcome, record.duration_ms / 1000.0);
        } else if record.outcome == Outcome::RateLimited {
            self.metrics.rate_limited();
        }
        let Some(audit) = &self.audit else { return Ok(()) };
        let duration = Duration::from_secs_f64(record.duration_ms.max(0.0) / 1000.0);
        let outcome = match record.outcome {
            Outcome::Ok => AuditOutcome::Ok,
            Outcome::ToolError => AuditOutcome::ToolError,
            Outcome::Denied => AuditOutcome::Denied,
            Outcome::RateLimited => AuditOutcome::RateLimited,
            Outcome::Refused | Outcome::Error | Outcome::TimedOut => AuditOutcome::Error,
            Outcome::Cancelled => AuditOutcome::Cancelled,
        };
        let event = AuditEvent {
            time: crate::local_audit::started_at(duration),
            request_id: record.request_id,
            session: record.caller.session,
            principal: record.caller.principal.id,
            transport: transport_name(record.caller.transport).into(),
            remote_addr: record.caller.remote_addr,
            method: record.method,
            tool: record.target,
            arguments: record.arguments,
            decision: if record.allowed { AuditDecision::Allow } else { AuditDecision::Deny },
            outcome,
            detail: record.detail,
            duration_us: rampart_audit::micros(duration),
        }
        .redacted(&self.redactor);
        match audit.record(event).await {
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::error!(%error, "audit record not written; the result is withheld (audit fails closed)");
                Err(Refusal::AuditUnavailable)
            }
        }
    }
}
