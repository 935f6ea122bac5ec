//! The Audit page: a search of the audit log (principal, tool, decision, outcome, time
//! range), newest first, 100 records a page; one record's whole detail; `verify` with the
//! signed checkpoints' status; a search exported as JSON lines.
//!
//! Reading the log is the one read the console makes from the store (the `console:audit`
//! grant, see the console's module). With `[audit] file` the log is a JSON-lines file: the
//! page verifies it but does not search it (every page would read the whole file), and
//! says so.
//!
//! Fast with a large log (the target: a page under 100 ms of server time with a
//! million records; `bench/console_audit.py` measures it): a page is one query of at most
//! 101 rows that an index serves in order ([`rampart_store::AuditQuery`]), the next page
//! goes on from the last record shown (keyset, not `OFFSET`), and nothing is counted.

use std::{path::PathBuf, sync::Arc, time::Instant};

use axum::{
    Extension,
    body::Body,
    extract::{Query, State},
    response::{IntoResponse, Response},
};
use futures::Stream;
use http::{StatusCode, header};
use maud::{Markup, html};
use rampart_audit::{AuditRecord, Outcome};
use rampart_store::{AuditKey, AuditQuery, AuditRow, Backend, Store};
use serde::Deserialize;

mod export;
mod record;
mod verify;

pub(crate) use export::export;
pub(crate) use record::record;
pub(crate) use verify::verify;

use super::{Console, Page, Signed, csrf_field, layout};
use crate::{
    AuditSource, AuditVerification, AuditVerifyError, CheckpointCheck, CheckpointFiles, VerifyProblem, check_columns,
    record_from_row, verify_audit_log,
};

/// Records a page shows.
const PAGE_ROWS: usize = 100;
/// Records an export holds at most, newest first (the page says "100,000"): more is a job for
/// `rampart audit search` or the database's own tools.
const EXPORT_MAX: usize = 100_000;
/// Rows an export reads per query.
const EXPORT_PAGE: i64 = 1000;
/// The decisions a search may ask for.
const DECISIONS: [&str; 2] = ["allow", "deny"];
/// The outcomes a search may ask for, in the order the form lists them.
const OUTCOMES: [Outcome; 9] = [
    Outcome::Ok,
    Outcome::ToolError,
    Outcome::Denied,
    Outcome::Refused,
    Outcome::RateLimited,
    Outcome::TimedOut,
    Outcome::Error,
    Outcome::Cancelled,
    Outcome::AuthFailed,
];

/// Where the audit log and its checkpoints are (`[audit]`), and the one verification
/// that may run at a time.
pub(crate) struct AuditSettings {
    /// `[audit] file`: the log is this JSON-lines file, not the store.
    file: Option<PathBuf>,
    /// The configured checkpoint file and its public key.
    checkpoints: CheckpointFiles,
    /// Held while a verification runs: it reads every record, so one at a time.
    verifying: tokio::sync::Mutex<()>,
}

impl AuditSettings {
    /// The settings of a server whose log is `file` (`None`: the store), checked against
    /// `checkpoints`.
    pub(crate) fn new(file: Option<PathBuf>, checkpoints: CheckpointFiles) -> Self {
        Self { file, checkpoints, verifying: tokio::sync::Mutex::new(()) }
    }

    fn source(&self, store: &Store) -> AuditSource {
        match &self.file {
            Some(path) => AuditSource::File(path.clone()),
            None => AuditSource::Store(store.clone()),
        }
    }
}

/// Whether searches merge chains by time. SQLite holds one chain (migration 0004), read in
/// its own order, which every index of the table carries (the rowid is the sequence
/// number); PostgreSQL may hold each replica's chain, merged by time.
pub(crate) fn merged_by_time(store: &Store) -> bool {
    store.backend() == Backend::Postgres
}

/// The search form's fields as the query string carries them (empty: any), and `before`,
/// the position of the page's last record when the page is an older one.
#[derive(Deserialize, Default, Clone, Debug, PartialEq, Eq)]
#[serde(default)]
pub(crate) struct Filters {
    principal: String,
    tool: String,
    decision: String,
    outcome: String,
    since: String,
    until: String,
    before: String,
}

/// A field's trimmed value, `None` when empty.
pub(crate) fn given(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

impl Filters {
    /// The store search these filters ask for: newest first, `limit` rows. Or what is wrong
    /// with one of them, for a person.
    fn query(&self, by_time: bool, limit: i64) -> Result<AuditQuery, String> {
        let decision = given(&self.decision);
        if let Some(decision) = &decision
            && !DECISIONS.contains(&decision.as_str())
        {
            return Err(format!("Decision '{decision}': use allow or deny."));
        }
        let outcome = given(&self.outcome);
        if let Some(outcome) = &outcome
            && !OUTCOMES.iter().any(|known| known.as_str() == outcome)
        {
            let known: Vec<&str> = OUTCOMES.iter().map(|o| o.as_str()).collect();
            return Err(format!("Outcome '{outcome}': use one of {}.", known.join(", ")));
        }
        Ok(AuditQuery {
            principal: given(&self.principal),
            tool: given(&self.tool),
            decision,
            outcome,
            since_ms: time_bound("Since", &self.since, false)?,
            until_ms: time_bound("Until", &self.until, true)?,
            before: position(&self.before)?,
            by_time,
            newest_first: true,
            limit,
            ..AuditQuery::default()
        })
    }

    /// These filters as a query string, `before` replaced by `before`.
    fn query_string(&self, before: Option<&AuditKey>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        let fields = [
            ("principal", &self.principal),
            ("tool", &self.tool),
            ("decision", &self.decision),
            ("outcome", &self.outcome),
            ("since", &self.since),
            ("until", &self.until),
        ];
        for (name, value) in fields {
            if let Some(value) = given(value) {
                query.append_pair(name, &value);
            }
        }
        if let Some(key) = before {
            query.append_pair("before", &position_text(key));
        }
        query.finish()
    }
}

/// A time filter: empty (none), RFC 3339 with an offset (`2025-06-01T12:30:00Z`), or a UTC
/// date and time as typed (`2025-06-01T12:30`, seconds optional) or a date. An `end`
/// bound takes in the whole of what it names: until 12:30 is until 12:30:59.999, until a
/// date is until the end of that day.
fn time_bound(field: &str, text: &str, end: bool) -> Result<Option<i64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(time) = text.parse::<jiff::Timestamp>() {
        return Ok(Some(time.as_millisecond()));
    }
    let refused =
        || format!("{field} '{text}': use a UTC time like 2025-06-01T12:30, or RFC 3339 like 2025-06-01T12:30:00Z.");
    let civil: jiff::civil::DateTime = text.parse().map_err(|_| refused())?;
    let start = civil.to_zoned(jiff::tz::TimeZone::UTC).map_err(|_| refused())?.timestamp().as_millisecond();
    let time_part = text.split_once(['T', 't', ' ']).map(|(_, time)| time);
    let rest_of_it = match time_part {
        _ if !end => 0,
        None => 86_400_000 - 1,
        Some(time) if time.matches(':').count() == 1 => 60_000 - 1,
        Some(time) if !time.contains(['.', ',']) => 1_000 - 1,
        Some(_) => 0,
    };
    Ok(Some(start + rest_of_it))
}

/// A record's position in a search, as the "Older" link carries it: `TIME_MS:SEQ:CHAIN`.
fn position_text(key: &AuditKey) -> String {
    format!("{}:{}:{}", key.time_ms, key.seq, key.chain)
}

/// [`position_text`] read back (empty: none).
fn position(text: &str) -> Result<Option<AuditKey>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let mut parts = text.splitn(3, ':');
    let mut number = || parts.next().and_then(|part| part.parse::<i64>().ok());
    let (Some(time_ms), Some(seq)) = (number(), number()) else {
        return Err("This page's position is not one the console wrote; start again from the newest records.".into());
    };
    let chain = parts.next().unwrap_or_default().to_owned();
    Ok(Some(AuditKey { time_ms, chain, seq }))
}

/// What a search found.
enum Found {
    /// `[audit] file`: the log is not in the store.
    FileLog(PathBuf),
    /// A filter is not valid.
    Invalid(String),
    /// The store cannot be read.
    Failed(String),
    /// The page's rows (each with its record, `None` when it does not parse), newest first,
    /// and the position to go on from when there are older ones.
    Rows(Vec<(AuditRow, Option<AuditRecord>)>, Option<AuditKey>),
}

impl Found {
    fn status(&self) -> StatusCode {
        match self {
            Found::Invalid(_) => StatusCode::BAD_REQUEST,
            Found::Failed(_) => StatusCode::SERVICE_UNAVAILABLE,
            Found::FileLog(_) | Found::Rows(..) => StatusCode::OK,
        }
    }
}

async fn search(console: &Console, filters: &Filters) -> Found {
    if let Some(path) = &console.audit.file {
        return Found::FileLog(path.clone());
    }
    let query = match filters.query(merged_by_time(&console.store), PAGE_ROWS as i64 + 1) {
        Ok(query) => query,
        Err(message) => return Found::Invalid(message),
    };
    let mut rows = match console.store.audit_records(&query).await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(%error, "console: the audit log could not be searched");
            return Found::Failed(format!("The audit log could not be read: {error}"));
        }
    };
    let older = (rows.len() > PAGE_ROWS).then(|| {
        rows.truncate(PAGE_ROWS);
        rows.last().map(AuditRow::key)
    });
    let rows = rows
        .into_iter()
        .map(|row| {
            let record = record_from_row(&row).ok();
            (row, record)
        })
        .collect();
    Found::Rows(rows, older.flatten())
}

/// `/console/audit/record?chain=…&seq=…`.
fn record_href(chain: &str, seq: i64) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("chain", chain)
        .append_pair("seq", &seq.to_string())
        .finish();
    format!("/console/audit/record?{query}")
}

/// A record's time as the page shows it (UTC, to the millisecond).
fn shown_time(time: jiff::Timestamp) -> String {
    time.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// One record as a row of the results (the columns of the Live page's calls), its time a
/// link to its detail.
fn row(row: &AuditRow, record: Option<&AuditRecord>) -> Markup {
    let href = record_href(&row.chain, row.seq);
    let Some(record) = record else {
        let time = jiff::Timestamp::from_millisecond(row.time_ms).map(shown_time).unwrap_or_default();
        return html! {
            tr.record.malformed data-seq=(row.seq) data-chain=(row.chain) {
                td { a.record-link href=(href) { (time) } }
                td { (row.principal) }
                td colspan="7" { "Record " (row.seq) ": its stored JSON is not an audit record. Verify the log." }
            }
        };
    };
    let event = &record.event;
    let (decision, outcome) = (event.decision.as_str(), event.outcome.as_str());
    html! {
        tr.record data-seq=(row.seq) data-chain=(row.chain) data-principal=(event.principal)
            data-tool=(event.tool.as_deref().unwrap_or("")) data-decision=(decision) data-outcome=(outcome) {
            td { a.record-link href=(href) title={ "Record " (row.seq) } {
                time datetime=(event.time.to_string()) { (shown_time(event.time)) }
            } }
            (super::live::cells(event))
        }
    }
}

fn search_form(filters: &Filters) -> Markup {
    let text = |id: &str, name: &str, label: &str, value: &str, placeholder: &str| {
        html! {
            div {
                label for=(id) { (label) }
                input id=(id) name=(name) value=(value) placeholder=(placeholder);
            }
        }
    };
    html! {
        form #audit-search .filters method="get" action="/console/audit" aria-label="Search the audit log" {
            (text("a-principal", "principal", "Principal", &filters.principal, "token:ci"))
            (text("a-tool", "tool", "Tool", &filters.tool, "fs_read"))
            div {
                label for="a-decision" { "Decision" }
                select #a-decision name="decision" {
                    option value="" selected[filters.decision.is_empty()] { "any" }
                    @for decision in DECISIONS {
                        option value=(decision) selected[filters.decision == decision] { (decision) }
                    }
                }
            }
            div {
                label for="a-outcome" { "Outcome" }
                select #a-outcome name="outcome" {
                    option value="" selected[filters.outcome.is_empty()] { "any" }
                    @for outcome in OUTCOMES {
                        @let name = outcome.as_str();
                        option value=(name) selected[filters.outcome == name] { (name) }
                    }
                }
            }
            div {
                label for="a-since" { "Since " span.hint { "(UTC)" } }
                input #a-since type="text" name="since" value=(filters.since) placeholder="2025-06-01T12:30"
                    aria-describedby="a-time-hint";
            }
            div {
                label for="a-until" { "Until " span.hint { "(UTC, inclusive)" } }
                input #a-until type="text" name="until" value=(filters.until) placeholder="2025-06-01T18:00"
                    aria-describedby="a-time-hint";
            }
            button #audit-search-submit type="submit" { "Search" }
        }
        p #a-time-hint .hint {
            "Times are text: a UTC date and time (" code { "2025-06-01T12:30" } ", seconds optional, or just a date), or "
            "RFC 3339 with an offset (" code { "2025-06-01T14:30:00+02:00" } "). Until takes in the whole minute, "
            "second or day it names. Principal and tool match exactly."
        }
    }
}

fn results(filters: &Filters, found: &Found) -> Markup {
    match found {
        Found::FileLog(path) => html! {
            (layout::notice(false, &format!(
                "This server writes its audit log to the JSON-lines file {} ([audit] file). Search, a \
                 record's detail and export read the log in the store, so they are not available here; the \
                 command rampart audit search reads the file. Verify, below, checks it.",
                path.display()
            )))
        },
        Found::Invalid(message) | Found::Failed(message) => html! { (layout::notice(false, message)) },
        Found::Rows(rows, older) => html! {
            p #audit-status .muted role="status" {
                @if rows.is_empty() {
                    @if filters.before.is_empty() { "No record matches these filters." }
                    @else { "No older record matches these filters." }
                } @else {
                    "Newest first, " (rows.len()) " record" @if rows.len() != 1 { "s" } " on this page. "
                    "Select a record's time for its whole detail."
                }
            }
            table #audit-results {
                (super::live::header())
                tbody {
                    @for (stored, record) in rows { (row(stored, record.as_ref())) }
                    @if rows.is_empty() { tr.empty { td colspan="9" { "No records." } } }
                }
            }
            nav.pages aria-label="Pages of results" {
                p {
                    @if !filters.before.is_empty() {
                        a #newer href={ "/console/audit?" (filters.query_string(None)) } { "← Newest" }
                        " "
                    }
                    @if let Some(key) = older {
                        a #older href={ "/console/audit?" (filters.query_string(Some(key))) } { "Older →" }
                    }
                }
            }
            p {
                a #audit-export href={ "/console/audit/export?" (filters.query_string(None)) }
                    download="rampart-audit.jsonl" {
                    "Export these results as JSON lines"
                }
                span.hint {
                    " — every matching record, newest first, one stored record per line (the exact JSON its hash "
                    "covers); at most 100,000 records: narrow the time range for more."
                }
            }
        },
    }
}

fn verify_form(console: &Console, signed: &Signed) -> Markup {
    let checkpoints = &console.audit.checkpoints;
    html! {
        h2 { "Verify" }
        form #audit-verify .panel method="post" action="/console/audit/verify" {
            (csrf_field(signed))
            p.hint {
                "Reads every record: its hash chain, its stored columns against the sealed record, and the signed "
                "checkpoints in " code { (checkpoints.file.display()) }
                " (public key " code { (checkpoints.public_key.display()) }
                "). It takes a while on a large log; one runs at a time."
            }
            button #audit-verify-submit type="submit" { "Verify the audit log" }
        }
    }
}

async fn render(console: &Console, signed: &Signed, filters: &Filters, verified: Option<Markup>) -> Response {
    let found = search(console, filters).await;
    let status = if verified.is_some() { StatusCode::OK } else { found.status() };
    let body = html! {
        @if let Some(verified) = verified { (verified) }
        (search_form(filters))
        (results(filters, &found))
        (verify_form(console, signed))
    };
    layout::page_with_status(status, signed, Page::Audit, "Audit", body)
}

/// `GET /console/audit`: the search.
pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(filters): Query<Filters>,
) -> Response {
    render(&console, &signed, &filters, None).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::{export::export_lines, *};

    fn filters(pairs: &[(&str, &str)]) -> Filters {
        let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        from_query_string(&query)
    }

    /// What axum's `Query` makes of a query string.
    fn from_query_string(query: &str) -> Filters {
        let uri: http::Uri = format!("/console/audit?{query}").parse().unwrap();
        Query::<Filters>::try_from_uri(&uri).unwrap().0
    }

    fn ms(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn filters_become_a_store_query() {
        let query = filters(&[
            ("principal", " token:ci "),
            ("tool", ""),
            ("decision", "deny"),
            ("outcome", "rate_limited"),
            ("since", "2025-06-01T12:30"),
            ("until", "2025-06-01T14:30:00+02:00"),
            ("unknown", "ignored"),
        ])
        .query(false, 101)
        .unwrap();
        assert_eq!(query.principal.as_deref(), Some("token:ci"));
        assert_eq!(query.tool, None);
        assert_eq!((query.decision.as_deref(), query.outcome.as_deref()), (Some("deny"), Some("rate_limited")));
        assert_eq!(query.since_ms, Some(ms("2025-06-01T12:30:00Z")));
        assert_eq!(query.until_ms, Some(ms("2025-06-01T12:30:00Z")), "RFC 3339: exactly that time");
        assert!(query.newest_first && !query.by_time && query.before.is_none());
        assert_eq!(query.limit, 101);
        let empty = Filters::default().query(true, 5).unwrap();
        assert!(empty.principal.is_none() && empty.decision.is_none() && empty.since_ms.is_none() && empty.by_time);
    }

    #[test]
    fn bad_filters_say_which_and_how() {
        let refused = |pairs: &[(&str, &str)]| filters(pairs).query(false, 1).unwrap_err();
        assert_eq!(refused(&[("decision", "maybe")]), "Decision 'maybe': use allow or deny.");
        assert!(refused(&[("outcome", "fine")]).starts_with("Outcome 'fine': use one of ok, tool_error, denied"));
        assert!(refused(&[("since", "yesterday")]).starts_with("Since 'yesterday': use a UTC time"));
        assert!(refused(&[("until", "2025-13-01")]).starts_with("Until '2025-13-01'"));
        assert!(refused(&[("before", "x:1:")]).contains("position"));
    }

    /// `until` takes in the whole of what it names; `since` starts where it says.
    #[test]
    fn time_bounds() {
        let check = |text: &str, end: bool, expected: &str| {
            assert_eq!(time_bound("t", text, end).unwrap(), Some(ms(expected)), "{text} (end {end})");
        };
        check("2025-06-01", false, "2025-06-01T00:00:00Z");
        check("2025-06-01", true, "2025-06-01T23:59:59.999Z");
        check("2025-06-01T12:30", false, "2025-06-01T12:30:00Z");
        check("2025-06-01T12:30", true, "2025-06-01T12:30:59.999Z");
        check("2025-06-01 12:30:15", true, "2025-06-01T12:30:15.999Z");
        check("2025-06-01T12:30:15.250", true, "2025-06-01T12:30:15.250Z");
        check("2025-06-01T12:30:00Z", true, "2025-06-01T12:30:00Z");
        check("2025-06-01T12:30:00-01:00", false, "2025-06-01T13:30:00Z");
        assert_eq!(time_bound("t", "  ", true).unwrap(), None);
    }

    /// The "Older" link carries the last record's position and every filter; reading it
    /// back gives the same search one page on.
    #[test]
    fn the_older_link_round_trips() {
        let shown = filters(&[("principal", "a b&c"), ("decision", "deny"), ("until", "2025-06-01")]);
        let key = AuditKey { time_ms: 1_750_000_000_123, chain: "replica:1".into(), seq: 42 };
        let link = shown.query_string(Some(&key));
        assert!(!link.contains("tool=") && link.contains("before="), "{link}");
        let next = from_query_string(&link);
        assert_eq!(next.query(true, 10).unwrap().before, Some(key));
        assert_eq!(Filters { before: String::new(), ..next.clone() }, shown);
        assert_eq!(from_query_string(&next.query_string(None)).before, "", "the newest page has no position");
        let default_chain = AuditKey { time_ms: 5, chain: String::new(), seq: 7 };
        assert_eq!(position(&position_text(&default_chain)).unwrap(), Some(default_chain));
    }

    /// An export reads page after page from the last record sent: every matching record
    /// once, newest first, each its stored line.
    #[tokio::test]
    async fn an_export_streams_every_matching_record_once() {
        use futures::TryStreamExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::sqlite_url(dir.path())).unwrap();
        let rows: Vec<AuditRow> = (1..=2_500)
            .map(|seq| AuditRow {
                chain: String::new(),
                seq,
                time_ms: seq,
                principal: if seq % 5 == 0 { "token:five".into() } else { "local".into() },
                tool: None,
                decision: "allow".into(),
                outcome: "ok".into(),
                record: format!("{{\"seq\":{seq}}}"),
            })
            .collect();
        store.append_audit_batch(rows).await.unwrap();
        let export = |pairs: &[(&str, &str)]| {
            let store = store.clone();
            let query = filters(pairs).query(false, EXPORT_PAGE).unwrap();
            async move {
                let first = store.audit_records(&query).await.unwrap();
                let chunks: Vec<String> = export_lines(store, query, first).try_collect().await.unwrap();
                chunks.concat()
            }
        };
        let all = export(&[]).await;
        let expected: String = (1..=2_500).rev().map(|seq| format!("{{\"seq\":{seq}}}\n")).collect();
        assert_eq!(all, expected);
        let fives = export(&[("principal", "token:five"), ("until", "1970-01-01T00:00:02.000Z")]).await;
        let expected: String = (1..=400).rev().map(|n| format!("{{\"seq\":{}}}\n", n * 5)).collect();
        assert_eq!(fives, expected);
        assert_eq!(export(&[("decision", "deny")]).await, "");
        store.close().await;
    }

    /// OUTCOMES lists each outcome once. A new one makes this `match` fail to compile
    /// until it is counted here, and in OUTCOMES.
    #[test]
    fn every_outcome_can_be_searched_for() {
        let position = |outcome: Outcome| match outcome {
            Outcome::Ok => 0,
            Outcome::ToolError => 1,
            Outcome::Denied => 2,
            Outcome::Refused => 3,
            Outcome::RateLimited => 4,
            Outcome::TimedOut => 5,
            Outcome::Error => 6,
            Outcome::Cancelled => 7,
            Outcome::AuthFailed => 8,
        };
        let positions: Vec<usize> = OUTCOMES.into_iter().map(position).collect();
        assert_eq!(positions, (0..9).collect::<Vec<_>>());
    }
}
