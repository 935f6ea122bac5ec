//! The pipeline's [`Guard`], made of `rampart-policy` (authorization) and
//! `rampart-audit` (the record of every request).

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use rampart_audit::{AuditEvent, AuditLog, Redactor};
use rampart_core::{Admission, CallRecord, Caller, Decision, Denied, Guard, Outcome, Refusal, Request, Transport};
use rampart_policy::Policy;

use crate::{limits::Limits, metrics::Metrics};

/// What a configuration reload may replace in a running guard, swapped as one.
#[derive(Debug)]
pub struct GuardState {
    /// The roles.
    pub policy: Arc<Policy>,
    /// Rate limits and caps (with their counters).
    pub limits: Arc<Limits>,
    /// What audit records mask.
    pub redactor: Arc<Redactor>,
}

/// How many records a Live subscriber may fall behind before it loses the oldest.
pub(crate) const LIVE_BACKLOG: usize = 1024;

/// Authorization by policy, admission by limits and the audit log's health, records by
/// the audit log.
pub struct SecurityGuard {
    state: ArcSwap<GuardState>,
    metrics: Arc<Metrics>,
    audit: Option<AuditLog>,
    /// When the audit sink was last probed while unhealthy (at most once a second).
    last_probe: std::sync::Mutex<Option<std::time::Instant>>,
    /// Every record as it is made (redacted), for the console's Live page: sent only
    /// while someone subscribes; a subscriber that falls behind loses the oldest.
    live: tokio::sync::broadcast::Sender<Arc<AuditEvent>>,
}

impl std::fmt::Debug for SecurityGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityGuard").field("audit", &self.audit.is_some()).finish_non_exhaustive()
    }
}

/// The transport's name in audit records.
pub(crate) fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Stdio => "stdio",
        Transport::StreamableHttp => "streamable_http",
        Transport::HttpSse => "http_sse",
        Transport::WebSocket => "websocket",
        Transport::Dbus => "dbus",
        Transport::Cli => "cli",
        Transport::Console => "console",
    }
}

/// The record of a request refused before the pipeline (denied, now, no arguments), from
/// an unauthenticated caller over streamable HTTP until the caller's fields are set.
fn refused(method: &str, outcome: Outcome, detail: String) -> AuditEvent {
    AuditEvent {
        time: Timestamp::now(),
        request_id: None,
        session: None,
        principal: "unauthenticated".into(),
        transport: transport_name(Transport::StreamableHttp).into(),
        remote_addr: None,
        method: method.into(),
        tool: None,
        toolbox: None,
        task: None,
        trace_id: None,
        arguments: serde_json::Value::Null,
        decision: Decision::Deny,
        outcome,
        detail: Some(detail),
        duration_us: 0,
    }
}

/// When something that has taken `elapsed` so far began: the time of its audit record.
fn started_at(elapsed: Duration) -> Timestamp {
    SignedDuration::try_from(elapsed)
        .ok()
        .and_then(|elapsed| Timestamp::now().checked_sub(elapsed).ok())
        .unwrap_or_else(Timestamp::now)
}

impl SecurityGuard {
    /// A guard with `state`, recording to `audit` (none: audit disabled) and counting in
    /// `metrics`.
    pub fn new(state: GuardState, metrics: Arc<Metrics>, audit: Option<AuditLog>) -> Self {
        Self {
            state: ArcSwap::from_pointee(state),
            metrics,
            audit,
            last_probe: std::sync::Mutex::new(None),
            live: tokio::sync::broadcast::Sender::new(LIVE_BACKLOG),
        }
    }

    /// Every record made from now on (redacted, before it is stored), as the console's
    /// Live page shows them. A receiver more than `LIVE_BACKLOG` (1,024) records behind loses
    /// the oldest (`RecvError::Lagged`).
    pub fn subscribe_live(&self) -> tokio::sync::broadcast::Receiver<Arc<AuditEvent>> {
        self.live.subscribe()
    }

    /// Hands `event` to the Live subscribers, if any.
    fn publish(&self, event: &AuditEvent) {
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(Arc::new(event.clone()));
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.state.load().policy.clone()
    }

    /// The limits in force (the HTTP layer throttles failed authentication with them).
    pub fn limits(&self) -> Arc<Limits> {
        self.state.load().limits.clone()
    }

    /// Puts a reloaded configuration's policy, limits and redactor in force, at once.
    pub fn replace(&self, state: GuardState) {
        self.state.store(Arc::new(state));
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The audit log, if enabled.
    pub fn audit(&self) -> Option<&AuditLog> {
        self.audit.as_ref()
    }

    /// Whether the audit log lets requests run: once it has read its chain's head at start
    /// (a request that arrives first waits for it), unless that head was edited, or it
    /// fails closed and cannot be written.
    async fn audit_admits(&self) -> bool {
        let Some(audit) = &self.audit else { return true };
        if audit.ready().await.is_err() {
            return false;
        }
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

    /// Records a failed authentication (no principal) on `transport`'s path `path`.
    pub async fn record_auth_failure(
        &self,
        transport: Transport,
        remote_addr: Option<String>,
        reason: &str,
        path: &str,
    ) {
        let detail = format!("authentication failed: {reason}");
        let event = AuditEvent {
            remote_addr,
            tool: Some(path.to_owned()),
            transport: transport_name(transport).into(),
            ..refused("auth", Outcome::AuthFailed, detail)
        };
        self.write(event).await;
    }

    /// Records a request of an authenticated `caller` that the HTTP layer refused before
    /// it reached the pipeline: `method` says what was refused (`session`: another
    /// principal's session; `request`: a body that did not arrive in time), `outcome`
    /// how, `detail` why.
    pub async fn record_refusal(&self, caller: &Caller, method: &str, outcome: Outcome, detail: String) {
        let event = AuditEvent {
            session: caller.session.clone(),
            principal: caller.principal.id.clone(),
            transport: transport_name(caller.transport).into(),
            remote_addr: caller.remote_addr.clone(),
            ..refused(method, outcome, detail)
        };
        self.write(event.redacted(&self.state.load().redactor)).await;
    }

    /// Records a console session opened or closed by `caller` (`what`: `sign-in`,
    /// `sign-out`): who held the console, from where, and when.
    pub async fn record_console_session(&self, caller: &Caller, what: &str, detail: String) {
        let event = AuditEvent {
            session: caller.session.clone(),
            principal: caller.principal.id.clone(),
            transport: transport_name(caller.transport).into(),
            remote_addr: caller.remote_addr.clone(),
            tool: Some(what.to_owned()),
            decision: Decision::Allow,
            ..refused("console", Outcome::Ok, detail)
        };
        self.write(event.redacted(&self.state.load().redactor)).await;
    }

    async fn write(&self, event: AuditEvent) {
        self.publish(&event);
        let Some(audit) = &self.audit else { return };
        if let Err(error) = audit.record(event).await {
            tracing::warn!(%error, "record not written to the audit log");
        }
    }
}

#[async_trait]
impl Guard for SecurityGuard {
    /// Every request asks this (every tool of `tools/list`, every call): the allowed
    /// answer without building the grant, the full decision only to name what a refusal
    /// is missing.
    fn authorize(&self, caller: &Caller, request: &Request<'_>) -> Result<(), Denied> {
        let state = self.state.load();
        if state.policy.allows(&caller.principal.roles, request) {
            return Ok(());
        }
        match state.policy.decide(&caller.principal.roles, request) {
            rampart_policy::Decision::Allow { .. } => Ok(()),
            rampart_policy::Decision::Deny { missing } => Err(Denied { missing: missing.to_string() }),
        }
    }

    /// Rate limits and caps first; then, under fail-closed audit, nothing runs while the
    /// audit log cannot be written (an unhealthy log is probed at most once a second so
    /// that service resumes as soon as the sink answers again).
    async fn admit(&self, caller: &Caller, method: &str, target: Option<&str>) -> Result<Admission, Refusal> {
        let tool = if method == "tools/call" { target } else { None };
        // The limits in force when the request arrived, even if a reload swaps them meanwhile.
        let limits = self.state.load().limits.clone();
        let admission = limits.admit(&caller.principal.id, tool).await?;
        if self.audit_admits().await { Ok(admission) } else { Err(Refusal::AuditUnavailable) }
    }

    async fn record(&self, record: CallRecord) -> Result<(), Refusal> {
        if record.method == "tools/call" {
            let tool = record.target.as_deref().unwrap_or("-");
            self.metrics.tool_call(tool, record.outcome, record.duration_ms / 1000.0);
        } else if record.outcome == Outcome::RateLimited {
            self.metrics.rate_limited();
        }
        if self.audit.is_none() && self.live.receiver_count() == 0 {
            return Ok(());
        }
        let duration = Duration::from_secs_f64(record.duration_ms.max(0.0) / 1000.0);
        let event = AuditEvent {
            time: started_at(duration),
            request_id: record.request_id,
            session: record.caller.session,
            principal: record.caller.principal.id,
            transport: transport_name(record.caller.transport).into(),
            remote_addr: record.caller.remote_addr,
            method: record.method,
            tool: record.target,
            toolbox: record.toolbox,
            task: record.task,
            trace_id: record.trace_id,
            arguments: record.arguments,
            decision: record.decision,
            outcome: record.outcome,
            detail: record.detail,
            duration_us: rampart_audit::micros(duration),
        }
        .redacted(&self.state.load().redactor);
        self.publish(&event);
        let Some(audit) = &self.audit else { return Ok(()) };
        match audit.record(event).await {
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::error!(%error, "audit record not written; the result is withheld (audit fails closed)");
                Err(Refusal::AuditUnavailable)
            }
        }
    }
}
