//! The Live page: calls as they happen (every audit record the server makes, redacted,
//! streamed over SSE from [`SecurityGuard::subscribe_live`]), with filters, and charts of
//! tool calls per minute and their p50/p99 latency over the last hour.
//!
//! Without JavaScript the page shows the newest records from the store and the charts
//! (server-drawn SVG); with it, new calls appear at the top as they are recorded.

use std::{collections::VecDeque, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Extension,
    extract::{Query, State},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use maud::{Markup, html};
use rampart_audit::{AuditEvent, AuditRecord};
use rampart_store::AuditQuery;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::{Console, Page, Signed};
use crate::SecurityGuard;

/// One minute of a chart: calls, p50 ms, p99 ms.
type Point = (u64, Option<f64>, Option<f64>);

/// Minutes the charts cover.
const MINUTES: usize = 60;
/// Latency buckets: bucket `i` holds durations below 2^i µs (the last, everything longer).
const BUCKETS: usize = 28;
/// Records the page shows before streaming.
const INITIAL_ROWS: i64 = 50;

/// One minute of tool calls.
#[derive(Clone)]
struct Minute {
    /// Minutes since the Unix epoch.
    minute: i64,
    calls: u64,
    /// Calls whose duration is unknown (a subscriber that fell behind counts them only).
    latencies: [u64; BUCKETS],
}

/// Tool calls per minute and their latency distribution over the last hour, counted from
/// the same records the audit log gets.
#[derive(Default)]
pub(crate) struct Recent {
    minutes: std::sync::Mutex<VecDeque<Minute>>,
}

fn bucket(duration_us: u64) -> usize {
    (u64::BITS - duration_us.leading_zeros()).min(BUCKETS as u32 - 1) as usize
}

fn now_minute() -> i64 {
    jiff::Timestamp::now().as_second().div_euclid(60)
}

impl Recent {
    /// Starts counting `guard`'s records (a task that lives as long as the server).
    pub(crate) fn start(guard: &SecurityGuard) -> Arc<Self> {
        let recent = Arc::new(Self::default());
        let mut records = guard.subscribe_live();
        let counting = recent.clone();
        tokio::spawn(async move {
            loop {
                match records.recv().await {
                    Ok(event) if event.method == "tools/call" => counting.count(Some(event.duration_us)),
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        for _ in 0..missed {
                            counting.count(None);
                        }
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        recent
    }

    fn count(&self, duration_us: Option<u64>) {
        let minute = now_minute();
        let mut minutes = self.minutes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if minutes.back().is_none_or(|last| last.minute != minute) {
            minutes.push_back(Minute { minute, calls: 0, latencies: [0; BUCKETS] });
            while minutes.front().is_some_and(|first| first.minute <= minute - MINUTES as i64) {
                minutes.pop_front();
            }
        }
        if let Some(current) = minutes.back_mut() {
            current.calls += 1;
            if let Some(us) = duration_us {
                current.latencies[bucket(us)] += 1;
            }
        }
    }

    /// Per minute of the last hour, oldest first: (calls, p50 ms, p99 ms).
    fn series(&self) -> Vec<Point> {
        let now = now_minute();
        let minutes = self.minutes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (0..MINUTES as i64)
            .map(|ago| now - (MINUTES as i64 - 1 - ago))
            .map(|minute| match minutes.iter().find(|m| m.minute == minute) {
                Some(m) => (m.calls, quantile(&m.latencies, 0.5), quantile(&m.latencies, 0.99)),
                None => (0, None, None),
            })
            .collect()
    }
}

/// The upper bound, in ms, of the bucket holding quantile `q`.
fn quantile(latencies: &[u64; BUCKETS], q: f64) -> Option<f64> {
    let total: u64 = latencies.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, count) in latencies.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Some((1u64 << i) as f64 / 1000.0);
        }
    }
    None
}

/// The filters of the page and its stream (exact matches; empty: any).
#[derive(Deserialize, Default, Clone)]
pub(crate) struct Filters {
    #[serde(default)]
    principal: String,
    #[serde(default)]
    tool: String,
    #[serde(default)]
    decision: String,
}

impl Filters {
    fn admits(&self, event: &AuditEvent) -> bool {
        let tool = event.tool.as_deref().unwrap_or("");
        (self.principal.is_empty() || event.principal == self.principal)
            && (self.tool.is_empty() || tool == self.tool)
            && (self.decision.is_empty() || event.decision.as_str() == self.decision)
    }
}

/// One call as a table row (also what the stream sends, rendered here so that the
/// script inserts escaped HTML only).
pub(crate) fn row(event: &AuditEvent) -> Markup {
    let time = event.time.strftime("%H:%M:%S%.3f").to_string();
    html! {
        tr.call data-principal=(event.principal) data-tool=(event.tool.as_deref().unwrap_or("")) {
            td { time datetime=(event.time.to_string()) { (time) } }
            (cells(event))
        }
    }
}

/// A record's cells after its time, as [`header`] names them (Live and Audit).
pub(crate) fn cells(event: &AuditEvent) -> Markup {
    let (decision, outcome) = (event.decision.as_str(), event.outcome.as_str());
    html! {
        td { (event.principal) }
        td { (event.transport) }
        td { (event.method) }
        td { code { (event.tool.as_deref().unwrap_or("—")) } }
        td class={ "decision-" (decision) } { (decision) }
        td class={ "outcome-" (outcome) } { (outcome) }
        td.num { (format!("{:.1}", event.duration_ms())) " ms" }
        td.muted { (event.detail.as_deref().unwrap_or("")) }
    }
}

/// The header of the calls table (Live and Audit).
pub(crate) fn header() -> Markup {
    html! {
        thead { tr {
            th scope="col" { "Time" } th scope="col" { "Principal" } th scope="col" { "Transport" }
            th scope="col" { "Method" } th scope="col" { "Tool" } th scope="col" { "Decision" }
            th scope="col" { "Outcome" } th scope="col" { "Duration" } th scope="col" { "Detail" }
        } }
    }
}

/// A bar chart of calls per minute and a line chart of p50/p99, as SVG.
fn charts(series: &[Point]) -> Markup {
    let (width, height, left, bottom) = (600.0, 150.0, 40.0, 16.0);
    let plot_w = width - left - 4.0;
    let plot_h = height - bottom - 6.0;
    let step = plot_w / series.len().max(1) as f64;
    let max_calls = series.iter().map(|s| s.0).max().unwrap_or(0).max(1) as f64;
    let max_ms = series.iter().filter_map(|s| s.2.or(s.1)).fold(1.0_f64, f64::max);
    let y_calls = |c: f64| 6.0 + plot_h - c / max_calls * plot_h;
    let y_ms = |ms: f64| 6.0 + plot_h - ms / max_ms * plot_h;
    let line = |pick: fn(&Point) -> Option<f64>| {
        series
            .iter()
            .enumerate()
            .filter_map(|(i, s)| pick(s).map(|ms| format!("{:.1},{:.1}", left + step * (i as f64 + 0.5), y_ms(ms))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let total: u64 = series.iter().map(|s| s.0).sum();
    html! {
        div.charts {
            figure #chart-calls {
                figcaption {
                    "Tool calls per minute, last hour (" (total) " in all; peak "
                    (format!("{:.1}", max_calls / 60.0)) " calls/s)"
                }
                svg.chart viewBox={ "0 0 " (width) " " (height) } role="img"
                    aria-label={ "Tool calls per minute over the last hour; " (total) " calls" } {
                    line.axis x1=(left) y1=(6.0 + plot_h) x2=(width - 4.0) y2=(6.0 + plot_h) {}
                    text x="2" y="12" { (max_calls as u64) "/min" }
                    text x="2" y=(6.0 + plot_h) { "0" }
                    text x=(left) y=(height - 2.0) { "−60 min" }
                    text x=(width - 40.0) y=(height - 2.0) { "now" }
                    @for (i, s) in series.iter().enumerate() {
                        @if s.0 > 0 {
                            rect.calls x=(format!("{:.1}", left + step * i as f64 + 1.0)) y=(format!("{:.1}", y_calls(s.0 as f64)))
                                width=(format!("{:.1}", (step - 2.0).max(1.0)))
                                height=(format!("{:.1}", 6.0 + plot_h - y_calls(s.0 as f64))) {
                                title { (s.0) " calls" }
                            }
                        }
                    }
                }
            }
            figure #chart-latency {
                figcaption { "Latency per minute: " span.decision-allow { "p50" } " and " span.decision-deny { "p99" } " (ms, bucket bound)" }
                svg.chart viewBox={ "0 0 " (width) " " (height) } role="img" aria-label="p50 and p99 latency per minute over the last hour" {
                    line.axis x1=(left) y1=(6.0 + plot_h) x2=(width - 4.0) y2=(6.0 + plot_h) {}
                    text x="2" y="12" { (format!("{max_ms:.0}")) " ms" }
                    text x="2" y=(6.0 + plot_h) { "0" }
                    text x=(left) y=(height - 2.0) { "−60 min" }
                    text x=(width - 40.0) y=(height - 2.0) { "now" }
                    polyline.p50 points=(line(|s| s.1)) {}
                    polyline.p99 points=(line(|s| s.2)) {}
                    // A dot per minute, so that a lone minute shows too.
                    @for (i, s) in series.iter().enumerate() {
                        @for (class, ms) in [("p50", s.1), ("p99", s.2)] {
                            @if let Some(ms) = ms {
                                circle class=(class) cx=(format!("{:.1}", left + step * (i as f64 + 0.5))) cy=(format!("{:.1}", y_ms(ms))) r="2.5" {
                                    title { (class) " " (format!("{ms:.3}")) " ms" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /console/live`.
pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(filters): Query<Filters>,
) -> Response {
    let given = super::audit::given;
    let query = AuditQuery {
        by_time: super::audit::merged_by_time(&console.store),
        newest_first: true,
        limit: INITIAL_ROWS,
        principal: given(&filters.principal),
        tool: given(&filters.tool),
        decision: given(&filters.decision),
        ..AuditQuery::default()
    };
    let (recent, error) = match console.store.audit_records(&query).await {
        Ok(rows) => {
            let events = rows
                .iter()
                .filter_map(|row| serde_json::from_str::<AuditRecord>(&row.record).ok())
                .map(|record| record.event)
                .collect::<Vec<_>>();
            (events, None)
        }
        Err(error) => (Vec::new(), Some(error.to_string())),
    };
    let body = html! {
        (charts(&console.recent.series()))
        form.filters method="get" action="/console/live" aria-label="Filter calls" {
            div { label for="f-principal" { "Principal" } input #f-principal name="principal" value=(filters.principal); }
            div { label for="f-tool" { "Tool" } input #f-tool name="tool" value=(filters.tool); }
            div {
                label for="f-decision" { "Decision" }
                select #f-decision name="decision" {
                    @for (value, label) in [("", "any"), ("allow", "allow"), ("deny", "deny")] {
                        option value=(value) selected[filters.decision == value] { (label) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        p #live-status.muted role="status" { "Newest first. With JavaScript on, new calls appear as they happen." }
        @if let Some(error) = error { (super::layout::notice(false, &format!("The audit log could not be read: {error}"))) }
        table #live-calls {
            (header())
            tbody {
                @for event in &recent { (row(event)) }
                @if recent.is_empty() { tr.empty { td colspan="9" { "No calls yet." } } }
            }
        }
    };
    super::page(&signed, Page::Live, "Live", body)
}

/// How often the Live stream re-checks its session (a revoked token, a role change, a
/// sign-out end it within this).
const RECHECK: Duration = Duration::from_secs(2);

/// `GET /console/live/events`: each new record matching the filters, as an SSE event
/// `call` whose data is its table row; the stream ends when the session no longer grants
/// the page.
pub(crate) async fn events(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(filters): Query<Filters>,
) -> Response {
    let records = console.guard.subscribe_live();
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.reset();
    let state = (records, recheck, console, signed.session, filters);
    let stream = futures::stream::unfold(state, |mut state| async move {
        let (records, recheck, console, session, filters) = &mut state;
        loop {
            tokio::select! {
                _ = recheck.tick() => {
                    if !console.still_grants(session, Page::Live).await {
                        return None;
                    }
                }
                received = records.recv() => match received {
                    Ok(event) if filters.admits(&event) => {
                        let event = Event::default().event("call").data(row(&event).into_string());
                        return Some((Ok::<_, Infallible>(event), state));
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn latency_buckets_and_quantiles() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 1);
        assert_eq!(bucket(1000), 10);
        let mut latencies = [0; BUCKETS];
        for _ in 0..98 {
            latencies[bucket(900)] += 1; // < 1.024 ms
        }
        latencies[bucket(50_000)] += 2; // < 65.536 ms
        assert_eq!(quantile(&latencies, 0.5), Some(1.024));
        assert_eq!(quantile(&latencies, 0.99), Some(65.536));
        assert_eq!(quantile(&[0; BUCKETS], 0.5), None);
    }

    #[test]
    fn counted_minutes() {
        let recent = Recent::default();
        recent.count(Some(500));
        recent.count(None);
        let series = recent.series();
        assert_eq!(series.len(), MINUTES);
        assert_eq!(series[MINUTES - 1].0, 2);
        assert!(series[..MINUTES - 1].iter().all(|s| s.0 == 0));
    }
}
