//! One record's whole detail: every field, its hash and stored columns checked.

use super::*;

/// Which chain and record the detail page shows.
#[derive(Deserialize)]
pub(crate) struct RecordAt {
    #[serde(default)]
    chain: String,
    seq: Option<String>,
}

fn no_such_record(signed: &Signed, message: &str) -> Response {
    let body = html! {
        (layout::notice(false, message))
        p { a href="/console/audit" { "Back to the search" } }
    };
    layout::page_with_status(StatusCode::NOT_FOUND, signed, Page::Audit, "Audit record", body)
}

/// `GET /console/audit/record?chain=…&seq=…`: one record, every field.
pub(crate) async fn record(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(at): Query<RecordAt>,
) -> Response {
    if console.audit.file.is_some() {
        return no_such_record(
            &signed,
            "This server's audit log is a JSON-lines file: the console reads records from the store only.",
        );
    }
    let Some(seq) = at.seq.as_deref().and_then(|seq| seq.trim().parse::<i64>().ok()) else {
        return no_such_record(&signed, "No such audit record.");
    };
    match console.store.audit_record(&at.chain, seq).await {
        Ok(Some(row)) => {
            let title = format!("Audit record {seq}");
            layout::page_with_status(StatusCode::OK, &signed, Page::Audit, &title, detail(&row))
        }
        Ok(None) => no_such_record(&signed, "No such audit record."),
        Err(error) => {
            tracing::warn!(%error, "console: an audit record could not be read");
            let body = layout::notice(false, &format!("The audit log could not be read: {error}"));
            layout::page_with_status(StatusCode::SERVICE_UNAVAILABLE, &signed, Page::Audit, "Audit record", body)
        }
    }
}

/// Whether `row`'s record still is what was sealed: its hash, and the stored columns.
fn integrity(row: &AuditRow, record: &AuditRecord) -> Markup {
    let hash = record.is_intact();
    let columns = check_columns(row, record);
    html! {
        @if hash {
            (layout::notice(true, "Its hash matches its content. Verify, on the search page, checks its place in the chain."))
        } @else {
            (layout::notice(false, "Its hash does NOT match its content: it was edited after it was sealed."))
        }
        @if let Err(mismatch) = columns { (layout::notice(false, &mismatch.to_string())) }
    }
}

/// One field of the detail table; `None` shows as a dash.
fn field(name: &str, value: Option<&str>) -> Markup {
    html! {
        tr {
            th scope="row" { (name) }
            td { @match value { Some(value) => code { (value) }, None => span.muted { "—" } } }
        }
    }
}

/// Every field of `row`'s record, its arguments as JSON, and the stored line.
fn detail(row: &AuditRow) -> Markup {
    let back = html! { p { a #back-to-search href="/console/audit" { "← Back to the search" } } };
    let Ok(record) = record_from_row(row) else {
        return html! {
            section #record-detail {
                (layout::notice(false, "Its stored JSON is not an audit record: edited, or corrupt. Verify the log."))
                h2 { "Stored JSON" }
                pre.json { (row.record) }
                (back)
            }
        };
    };
    let event = &record.event;
    let chain = if row.chain.is_empty() { "(default)" } else { row.chain.as_str() };
    let duration = format!("{:.3} ms ({} µs)", event.duration_ms(), event.duration_us);
    let fields: [(&str, Option<&str>); 15] = [
        ("Time", Some(&rampart_audit::format_time(event.time))),
        ("Principal", Some(&event.principal)),
        ("Transport", Some(&event.transport)),
        ("Remote address", event.remote_addr.as_deref()),
        ("Session", event.session.as_deref()),
        ("Request id", event.request_id.as_deref()),
        ("Method", Some(&event.method)),
        ("Tool", event.tool.as_deref()),
        ("Toolbox", event.toolbox.as_deref()),
        ("Task", event.task.as_deref()),
        ("Trace id", event.trace_id.as_deref()),
        ("Decision", Some(event.decision.as_str())),
        ("Outcome", Some(event.outcome.as_str())),
        ("Duration", Some(&duration)),
        ("Detail", event.detail.as_deref()),
    ];
    html! {
        section #record-detail data-seq=(record.seq) data-chain=(row.chain) {
            (integrity(row, &record))
            table #record-fields {
                tbody {
                    (field("Chain", Some(chain)))
                    (field("Sequence number", Some(&record.seq.to_string())))
                    @for (name, value) in fields { (field(name, value)) }
                    (field("Previous hash", Some(&record.prev_hash)))
                    (field("Hash", Some(&record.hash)))
                }
            }
            h2 { "Arguments " span.hint { "(as recorded: secrets redacted before the record was sealed)" } }
            div #record-arguments { (layout::json_block(&event.arguments)) }
            details {
                summary { "The stored line (what the hash covers, with the hash)" }
                pre.json #record-line { (row.record) }
            }
            (back)
        }
    }
}
