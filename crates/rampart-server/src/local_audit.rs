//! Audit records for administrative commands run on the local store (`rampart token
//! create|revoke|rotate`): layer 2 of what the `admin` tools do over MCP, recorded in the
//! same log, chain and redaction as the server's. Each record names the `admin` tool the
//! command mirrors (`admin_token_create`, …), so `rampart audit search --tool
//! admin_token_create` finds both layers; its transport is `cli` and its principal the
//! configured local operator (`[stdio] principal`, default `local`).
//!
//! A server may be running on the same store: its writer and this one append to one
//! chain, each re-reading the head when the other got there first
//! ([`rampart_audit::SinkError::Conflict`]).

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use rampart_audit::{AuditEvent, AuditLog, Commit, Decision, Outcome, Redactor};
use rampart_config::Config;
use rampart_store::Store;
use serde_json::Value;

use crate::{ServerError, setup};

/// The audit log of one administrative command; every record waits until stored.
#[derive(Debug)]
pub struct LocalAudit {
    /// `None`: audit disabled, or unavailable under `on_failure = "open"`.
    log: Option<AuditLog>,
    redactor: Redactor,
    principal: String,
}

impl LocalAudit {
    /// Opens the audit log `config` names (the store's table, or `[audit] file`), with its
    /// failure policy.
    ///
    /// # Errors
    /// [`ServerError::Audit`] when the log cannot be opened (unreadable, or its last record
    /// edited) and the log fails closed: the command must not run unrecorded. Failing
    /// open, the command runs and a warning says it is not recorded.
    pub async fn open(config: &Config, store: &Store) -> Result<Self, ServerError> {
        let log = match setup::start_audit(config, store).await {
            Ok(log) => log.map(|log| log.with_commit(Commit::Synchronous)),
            Err(error) if config.audit.on_failure == rampart_config::AuditFailure::Open => {
                tracing::warn!(%error, "this command is not recorded in the audit log (audit failure policy: fail open)");
                None
            }
            Err(error) => return Err(error),
        };
        Ok(Self { log, redactor: setup::redactor(config), principal: config.stdio.principal.clone() })
    }

    /// Records one command: `tool` is the `admin` tool it mirrors, `arguments` its
    /// arguments (redacted here; never a token secret), `result` its outcome (`Ok(detail)`
    /// or `Err(message)`), `started` when it began.
    ///
    /// # Errors
    /// [`ServerError::Audit`] when the record was not stored and the log fails closed.
    pub async fn record(
        &self,
        tool: &str,
        arguments: Value,
        result: Result<String, String>,
        started: Instant,
    ) -> Result<(), ServerError> {
        let Some(log) = &self.log else { return Ok(()) };
        let event = event(&self.principal, tool, arguments, result, started).redacted(&self.redactor);
        log.record(event).await.map(drop).map_err(|error| ServerError::Audit(error.to_string()))
    }

    /// Stops the log's writer once what was recorded is stored.
    pub async fn close(self) {
        if let Some(log) = self.log {
            log.shutdown().await;
        }
    }
}

/// The record of an administrative action taken on the command line by `principal` (not
/// yet redacted): `tool` is the `admin` tool it mirrors, `result` its outcome
/// (`Ok(detail)` or `Err(message)`), `started` when it began.
pub(crate) fn event(
    principal: &str,
    tool: &str,
    arguments: Value,
    result: Result<String, String>,
    started: Instant,
) -> AuditEvent {
    let elapsed = started.elapsed();
    let (outcome, detail) = match result {
        Ok(detail) => (Outcome::Ok, detail),
        Err(message) => (Outcome::Error, message),
    };
    AuditEvent {
        time: started_at(elapsed),
        request_id: None,
        session: None,
        principal: principal.to_owned(),
        transport: "cli".into(),
        remote_addr: None,
        method: "tools/call".into(),
        tool: Some(tool.to_owned()),
        arguments,
        decision: Decision::Allow,
        outcome,
        detail: Some(detail),
        duration_us: rampart_audit::micros(elapsed),
    }
}

/// When something that has taken `elapsed` so far began: the time of its audit record.
pub(crate) fn started_at(elapsed: Duration) -> Timestamp {
    SignedDuration::try_from(elapsed)
        .ok()
        .and_then(|elapsed| Timestamp::now().checked_sub(elapsed).ok())
        .unwrap_or_else(Timestamp::now)
}
