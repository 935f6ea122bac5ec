//! A search exported as JSON lines, streamed.

use super::*;

/// `GET /console/audit/export?<the search's filters>`: the matching records' stored lines,
/// newest first, streamed a thousand at a time (never the whole export in memory), at most
/// [`EXPORT_MAX`].
pub(crate) async fn export(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(filters): Query<Filters>,
) -> Response {
    let found = match &console.audit.file {
        Some(path) => Found::FileLog(path.clone()),
        None => match filters.query(merged_by_time(&console.store), EXPORT_PAGE) {
            Err(message) => Found::Invalid(message),
            // The first page before the headers: a store that cannot be read is a page that
            // says so, not an empty file.
            Ok(query) => match console.store.audit_records(&query).await {
                Ok(first) => {
                    tracing::info!(principal = %signed.principal().id, "console: audit log exported");
                    let stream = export_lines(console.store.clone(), query, first);
                    return (
                        [
                            (header::CONTENT_TYPE, "application/x-ndjson"),
                            (header::CONTENT_DISPOSITION, "attachment; filename=\"rampart-audit.jsonl\""),
                        ],
                        Body::from_stream(stream),
                    )
                        .into_response();
                }
                Err(error) => Found::Failed(format!("The audit log could not be read: {error}")),
            },
        },
    };
    let body = html! { (results(&filters, &found)) p { a href="/console/audit" { "Back to the search" } } };
    let status = if found.status() == StatusCode::OK { StatusCode::NOT_FOUND } else { found.status() };
    layout::page_with_status(status, &signed, Page::Audit, "Audit export", body)
}

/// Where an export is.
struct Exporting {
    store: Store,
    query: AuditQuery,
    /// The page read but not sent yet.
    page: Option<Vec<AuditRow>>,
    sent: usize,
}

/// Each page of `query` (the first one, `first`, read already) as one chunk of lines. A
/// store error after the first page ends the body with an error, so the client sees a
/// broken download rather than a short file that looks complete.
pub(super) fn export_lines(
    store: Store,
    query: AuditQuery,
    first: Vec<AuditRow>,
) -> impl Stream<Item = Result<String, std::io::Error>> + Send + 'static {
    let state = Exporting { store, query, page: Some(first), sent: 0 };
    futures::stream::try_unfold(state, |mut state| async move {
        let page = match state.page.take() {
            Some(page) => page,
            None => state.store.audit_records(&state.query).await.map_err(|error| {
                tracing::warn!(%error, "console: an audit export stopped");
                std::io::Error::other(error)
            })?,
        };
        let take = page.len().min(EXPORT_MAX - state.sent);
        if take == 0 {
            return Ok(None);
        }
        let mut lines = String::with_capacity(page[..take].iter().map(|row| row.record.len() + 1).sum());
        for row in &page[..take] {
            lines.push_str(&row.record);
            lines.push('\n');
        }
        state.sent += take;
        let full = i64::try_from(page.len()).is_ok_and(|len| len >= state.query.limit);
        state.query.before = page.get(take - 1).map(AuditRow::key);
        if !full || state.sent >= EXPORT_MAX {
            // Nothing after this chunk: the next call ends the stream without a query.
            state.page = Some(Vec::new());
        }
        Ok(Some((lines, state)))
    })
}
