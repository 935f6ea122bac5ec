//! Prometheus metrics (prometheus-client, text exposition format):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `mcp_tool_calls_total` | counter | `tool`, `status` (an audit outcome: ok, tool_error, denied, refused, rate_limited, timed_out, error, cancelled) |
//! | `mcp_tool_call_duration_seconds` | histogram | `tool` |
//! | `mcp_auth_failures_total` | counter | `reason` (missing, malformed, invalid, throttled) |
//! | `mcp_rate_limited_total` | counter | |
//! | `mcp_requests_refused_total` | counter | `reason` (body_read_timeout, body_too_large, foreign_session) |
//! | `mcp_sessions_active` | gauge | |
//! | `mcp_audit_queue_depth` | gauge | |
//!
//! Served at `/metrics` on `--metrics-listen` (no authentication: bind it where only
//! your scraper reaches), or behind authentication on the main address.

use std::sync::atomic::AtomicI64;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use rampart_core::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    tool: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabel {
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    tool_calls: Family<CallLabels, Counter>,
    durations: Family<ToolLabel, Histogram, fn() -> Histogram>,
    auth_failures: Family<ReasonLabel, Counter>,
    rate_limited: Counter,
    refused: Family<ReasonLabel, Counter>,
    sessions_active: Gauge<i64, AtomicI64>,
    audit_queue_depth: Gauge<i64, AtomicI64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let tool_calls = Family::<CallLabels, Counter>::default();
        let durations = Family::<ToolLabel, Histogram, fn() -> Histogram>::new_with_constructor(duration_histogram);
        let auth_failures = Family::<ReasonLabel, Counter>::default();
        let rate_limited = Counter::default();
        let refused = Family::<ReasonLabel, Counter>::default();
        let sessions_active = Gauge::default();
        let audit_queue_depth = Gauge::default();
        registry.register("mcp_tool_calls", "Tool calls by tool and outcome", tool_calls.clone());
        registry.register("mcp_tool_call_duration_seconds", "Tool call duration", durations.clone());
        registry.register("mcp_auth_failures", "Failed authentications by reason", auth_failures.clone());
        registry.register("mcp_rate_limited", "Requests refused by a rate limit or cap", rate_limited.clone());
        registry.register("mcp_requests_refused", "Requests the HTTP layer refused, by reason", refused.clone());
        registry.register("mcp_sessions_active", "Open MCP sessions", sessions_active.clone());
        registry.register("mcp_audit_queue_depth", "Audit records waiting to be written", audit_queue_depth.clone());
        Self {
            registry,
            tool_calls,
            durations,
            auth_failures,
            rate_limited,
            refused,
            sessions_active,
            audit_queue_depth,
        }
    }

    /// Counts one finished tool call.
    pub fn tool_call(&self, tool: &str, outcome: Outcome, seconds: f64) {
        self.tool_calls.get_or_create(&CallLabels { tool: tool.to_owned(), status: outcome.as_str().into() }).inc();
        self.durations.get_or_create(&ToolLabel { tool: tool.to_owned() }).observe(seconds);
        if outcome == Outcome::RateLimited {
            self.rate_limited.inc();
        }
    }

    /// Counts a refusal by a limit outside tool calls.
    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Counts a request the HTTP layer refused for `reason` (e.g. `body_read_timeout`).
    pub fn refused(&self, reason: &str) {
        self.refused.get_or_create(&ReasonLabel { reason: reason.to_owned() }).inc();
    }

    /// Counts a failed authentication.
    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures.get_or_create(&ReasonLabel { reason: reason.to_owned() }).inc();
    }

    /// The text exposition, with the gauges set to the given current values.
    pub fn render(&self, sessions: usize, audit_queue: usize) -> String {
        self.sessions_active.set(i64::try_from(sessions).unwrap_or(i64::MAX));
        self.audit_queue_depth.set(i64::try_from(audit_queue).unwrap_or(i64::MAX));
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            tracing::error!("cannot encode metrics");
        }
        text
    }
}
