//! What the call pipeline reports for one MCP request: [`AuditEvent`], its [`Decision`]
//! and [`Outcome`], and the one timestamp format audit records use.

use std::{borrow::Cow, time::Duration};

use jiff::{RoundMode, Timestamp, TimestampRound, Unit};
use serde::{Deserialize, Serialize};

use crate::Redactor;
pub use rampart_core::{Decision, Outcome};

/// One MCP request that reached the pipeline, or one failed authentication, as the
/// pipeline reports it. Not yet chained: [`AuditLog`](crate::AuditLog) adds the sequence
/// number and hashes and makes it an [`AuditRecord`](crate::AuditRecord).
///
/// Everything here is written to the audit log as is: run [`AuditEvent::redacted`] (or
/// [`Redactor::redact`] on `arguments`) before handing the event over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// When the request arrived (set by the caller). Kept to whole milliseconds: sealing a
    /// record truncates finer precision, and the serialized form is
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC, exactly three fractional digits).
    #[serde(with = "time_ms")]
    pub time: Timestamp,
    /// The JSON-RPC id of the request, if it had one (not the HTTP `x-request-id`, which
    /// only the server log carries).
    pub request_id: Option<String>,
    /// The MCP session id (`Mcp-Session-Id`), if any.
    pub session: Option<String>,
    /// Who made the request (`Principal::id`, e.g. `token:ci`), or `anonymous`.
    pub principal: String,
    /// `stdio` or `streamable_http`; `cli` for a `rampart token` command run on the
    /// store directly.
    pub transport: String,
    /// The client's socket address (`ip:port`), when the transport has one.
    pub remote_addr: Option<String>,
    /// The MCP method (e.g. `tools/call`, `resources/read`), or `auth` for a failed
    /// authentication.
    pub method: String,
    /// The tool name, prompt name or resource URI the request was about.
    pub tool: Option<String>,
    /// The toolbox that served it (e.g. `upstream:github` for a tool of a mounted MCP
    /// server), when the request reached one. Absent from records that have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toolbox: Option<String>,
    /// The task the call ran as (the tasks extension, SEP-2663), or the task a
    /// `tasks/*` request was about. Absent from records that have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The distributed trace the request was part of (W3C Trace Context: 32 lower-case
    /// hex digits), when the server exports traces (`[telemetry]`): the trace to look up
    /// in the tracing back-end for this record. Absent from records that have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The request's arguments, already redacted; `null` when there were none.
    pub arguments: serde_json::Value,
    /// What policy decided.
    pub decision: Decision,
    /// How the request ended.
    pub outcome: Outcome,
    /// A short explanation, e.g. the missing permission or the error message (redacted).
    pub detail: Option<String>,
    /// How long the request took, in whole microseconds (see [`micros`]). An integer so
    /// that every store reproduces it exactly, and with it the record's hash.
    pub duration_us: u64,
}

impl AuditEvent {
    /// This event with `arguments`, `detail` and `tool` (a resource URI may carry a
    /// token) passed through `redactor`.
    pub fn redacted(mut self, redactor: &Redactor) -> Self {
        redactor.redact_in_place(&mut self.arguments);
        for text in [&mut self.detail, &mut self.tool].into_iter().flatten() {
            if let Cow::Owned(redacted) = redactor.redact_str(text) {
                *text = redacted;
            }
        }
        self
    }

    /// The duration in milliseconds, for display.
    pub fn duration_ms(&self) -> f64 {
        // Exact below 2^53 µs (285 years).
        self.duration_us as f64 / 1000.0
    }
}

/// `duration` in whole microseconds, saturating at `u64::MAX`: the unit of
/// [`AuditEvent::duration_us`].
pub fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// `time` truncated to whole milliseconds (toward the past).
pub(crate) fn truncate_to_ms(time: Timestamp) -> Timestamp {
    // Floor rather than truncation toward zero, so times before 1970 format consistently.
    let floor = TimestampRound::new().smallest(Unit::Millisecond).mode(RoundMode::Floor);
    time.round(floor).unwrap_or(time)
}

/// The audit timestamp format: RFC 3339 in UTC with exactly three fractional digits,
/// `2025-06-01T12:34:56.789Z`. Finer precision is truncated.
pub fn format_time(time: Timestamp) -> String {
    format!("{:.3}", truncate_to_ms(time))
}

/// Parses the audit timestamp format, refusing anything [`format_time`] would not have
/// written (another offset, more or fewer fractional digits), so that a stored record is
/// byte-for-byte what was hashed.
///
/// # Errors
/// A message naming the expected shape.
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    let expected = "an RFC 3339 UTC time with milliseconds, like 2025-06-01T12:34:56.789Z";
    let time: Timestamp = text.parse().map_err(|error| format!("{text:?} is not {expected}: {error}"))?;
    if format_time(time) == text { Ok(time) } else { Err(format!("{text:?} is not {expected}")) }
}

/// serde for [`AuditEvent::time`]: [`format_time`] / [`parse_time`].
pub(crate) mod time_ms {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(time: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_time(*time))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_time(&text).map_err(D::Error::custom)
    }
}
