//! An upstream's lifecycle, counters and what `rampart upstream list` shows of it.

use super::*;

/// The upstream's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not started yet.
    Idle,
    /// Connecting.
    Starting,
    /// Answering.
    Ready,
    /// Failed or exited; the next attempt is scheduled.
    BackingOff,
    /// Removed from the configuration or the server is stopping.
    Stopped,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Idle => "idle",
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::BackingOff => "backing off",
            Self::Stopped => "stopped",
        })
    }
}

#[derive(Debug, Clone)]
pub(super) struct State {
    pub(super) phase: Phase,
    pub(super) since: jiff::Timestamp,
    pub(super) last_error: Option<String>,
    pub(super) pid: Option<u32>,
    pub(super) attempts: u32,
}

#[derive(Default)]
pub(super) struct Stats {
    pub(super) calls: u64,
    pub(super) errors: u64,
    pub(super) latencies_ms: VecDeque<f64>,
}

/// What `rampart upstream list` shows of one upstream.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamStatus {
    /// Its name in `[upstreams.NAME]`.
    pub name: String,
    /// `stdio` or `http`.
    pub transport: &'static str,
    /// The command line or URL (never a header or environment value).
    pub target: String,
    /// The prefix of its served names.
    pub prefix: String,
    /// Lifecycle phase.
    pub state: Phase,
    /// Since when (RFC 3339).
    pub since: String,
    /// The last failure, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Process ids of its children (stdio): the primary session's, then one per
    /// principal's session.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pids: Vec<u32>,
    /// Tools served.
    pub tools: usize,
    /// Tools hidden because their definition changed.
    pub changed_tools: usize,
    /// Upstream sessions open for callers (besides the primary).
    pub sessions: usize,
    /// Calls made through it since start.
    pub calls: u64,
    /// Calls that failed (transport errors and `isError` results).
    pub errors: u64,
    /// Median call latency, ms (last 1,024 calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// 99th percentile call latency, ms (last 1,024 calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
}

impl Inner {
    pub(super) fn set_phase(&self, phase: Phase, error: Option<String>, pid: Option<u32>) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.phase != phase {
            state.since = jiff::Timestamp::now();
        }
        state.phase = phase;
        if error.is_some() {
            state.last_error = error;
        }
        state.pid = pid;
    }

    pub(super) fn state(&self) -> State {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub(super) fn status(&self, sessions: usize) -> UpstreamStatus {
        let state = self.state();
        let view = self.view.load();
        let stats = self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut latencies: Vec<f64> = stats.latencies_ms.iter().copied().collect();
        latencies.sort_by(f64::total_cmp);
        let quantile = |q: f64| -> Option<f64> {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "an index into at most 1,024 values"
            )]
            let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
            latencies.get(index).map(|ms| (ms * 1000.0).round() / 1000.0)
        };
        let (transport, target) = match &self.target {
            ClientTarget::Stdio { command, .. } => ("stdio", command.join(" ")),
            ClientTarget::Http { url, .. } => ("http", url.clone()),
            ClientTarget::InProcess(server) => ("in-process", server.name().to_owned()),
        };
        UpstreamStatus {
            name: self.name.clone(),
            transport,
            target,
            prefix: self.prefix.clone(),
            state: state.phase,
            since: format!("{:.0}", state.since),
            last_error: state.last_error,
            pids: state.pid.into_iter().collect(),
            tools: view.tools.len(),
            changed_tools: view.hidden.len(),
            sessions,
            calls: stats.calls,
            errors: stats.errors,
            p50_ms: quantile(0.5),
            p99_ms: quantile(0.99),
        }
    }
}
