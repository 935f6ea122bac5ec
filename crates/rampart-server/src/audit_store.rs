//! The audit log's sink in the store (SQLite or PostgreSQL): one row per record, holding
//! the record's exact JSON so that verification re-hashes what was written, and the check
//! that a stored row still says what its sealed record says ([`push_row`]).
//!
//! A row's `seq`, `time_ms`, `principal`, `tool`, `decision` and `outcome` columns are
//! copies of fields of the hashed record, kept so that `audit search` and the console's
//! Audit page can filter with an index. The hash covers
//! only the record: editing a column hides the record from a search without breaking the
//! chain, so verification compares every column with the record too.

use async_trait::async_trait;
use rampart_audit::{AuditRecord, AuditSink, SealedRecord, SinkError, Verifier, VerifyError, format_time};
use rampart_store::{AuditRow, Store, StoreError};

/// [`AuditSink`] over the store, writing one hash chain: the default one (`""`), or one
/// of the writer's own ([`StoreSink::on_chain`]).
#[derive(Debug, Clone)]
pub struct StoreSink {
    store: Store,
    chain: String,
}

impl StoreSink {
    /// A sink writing to `store`'s default chain.
    pub fn new(store: Store) -> Self {
        Self { store, chain: String::new() }
    }

    /// The same sink on the chain `chain` (a replica's: each replica of a cluster keeps
    /// one, so that no replica waits for another's head).
    #[must_use]
    pub fn on_chain(mut self, chain: &str) -> Self {
        self.chain = chain.to_owned();
        self
    }
}

/// A stored row back to a record.
///
/// # Errors
/// [`SinkError::Corrupt`]-like backend error when the JSON does not parse.
pub fn record_from_row(row: &AuditRow) -> Result<AuditRecord, SinkError> {
    serde_json::from_str(&row.record).map_err(SinkError::backend)
}

fn row(record: &SealedRecord, chain: &str) -> Result<AuditRow, SinkError> {
    Ok(AuditRow {
        chain: chain.to_owned(),
        seq: i64::try_from(record.seq).map_err(SinkError::backend)?,
        time_ms: record.event.time.as_millisecond(),
        principal: record.event.principal.clone(),
        tool: record.event.tool.clone(),
        decision: record.event.decision.as_str().to_owned(),
        outcome: record.event.outcome.as_str().to_owned(),
        record: record.line().to_owned(),
    })
}

/// A stored column that does not say what the sealed record in its row says: the row was
/// edited after it was written (the record's hash cannot show it; see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {seq} was edited: its stored column '{column}' says '{stored}' but the sealed record says '{sealed}'")]
pub struct ColumnMismatch {
    /// The record's own sequence number (what its hash covers).
    pub seq: u64,
    /// The column: `seq`, `time_ms`, `principal`, `tool`, `decision` or `outcome`.
    pub column: &'static str,
    /// What the column holds (`NULL` for a missing tool).
    pub stored: String,
    /// What the record holds; for `time_ms`, the milliseconds and the record's time.
    pub sealed: String,
}

/// Checks that each of `row`'s columns is the copy of `record`'s field the sink stores
/// (the inverse of what [`StoreSink`] writes): `seq`, `time_ms` (the record's time in Unix
/// milliseconds), `principal`, `tool`, `decision`, `outcome`.
///
/// # Errors
/// The first column that differs, in that order.
pub fn check_columns(row: &AuditRow, record: &AuditRecord) -> Result<(), ColumnMismatch> {
    let event = &record.event;
    let time_ms = event.time.as_millisecond();
    let tool = |tool: Option<&str>| tool.unwrap_or("NULL").to_owned();
    let (decision, outcome) = (event.decision.as_str(), event.outcome.as_str());
    let checks: [(&'static str, bool, String, String); 6] = [
        ("seq", u64::try_from(row.seq).ok() == Some(record.seq), row.seq.to_string(), record.seq.to_string()),
        (
            "time_ms",
            row.time_ms == time_ms,
            row.time_ms.to_string(),
            format!("{time_ms} ({})", format_time(event.time)),
        ),
        ("principal", row.principal == event.principal, row.principal.clone(), event.principal.clone()),
        ("tool", row.tool == event.tool, tool(row.tool.as_deref()), tool(event.tool.as_deref())),
        ("decision", row.decision == decision, row.decision.clone(), decision.to_owned()),
        ("outcome", row.outcome == outcome, row.outcome.clone(), outcome.to_owned()),
    ];
    match checks.into_iter().find(|(_, same, _, _)| !same) {
        None => Ok(()),
        Some((column, _, stored, sealed)) => Err(ColumnMismatch { seq: record.seq, column, stored, sealed }),
    }
}

/// What [`push_row`] found wrong with a stored row.
#[derive(Debug, thiserror::Error)]
pub enum RowProblem {
    /// The row's record is not a valid record (it cannot be verified at all).
    #[error("record {seq}: {source}")]
    Malformed {
        /// The row's `seq` column.
        seq: i64,
        /// Why it does not parse.
        #[source]
        source: SinkError,
    },
    /// The record breaks the chain (edited, deleted, reordered…).
    #[error(transparent)]
    Chain(#[from] VerifyError),
    /// A column does not match the record.
    #[error(transparent)]
    Column(#[from] ColumnMismatch),
}

/// Verifies the next stored row, in `seq` column order: its record against the chain
/// (`verifier`), then its columns against its record ([`check_columns`]). The columns of
/// a record after a jump in sequence numbers are not checked: `verifier` reports the jump,
/// an earlier problem, on the next row or at [`Verifier::finish`].
///
/// # Errors
/// The first problem: see [`RowProblem`].
pub fn push_row(verifier: &mut Verifier, row: &AuditRow) -> Result<(), RowProblem> {
    let record = record_from_row(row).map_err(|source| RowProblem::Malformed { seq: row.seq, source })?;
    verifier.push(&record)?;
    if !verifier.has_pending_gap() {
        check_columns(row, &record)?;
    }
    Ok(())
}

/// A store error on appending records from `seq`: a sequence number that exists already
/// is [`SinkError::Conflict`] (another writer on the same database; nothing was stored).
fn append_error(seq: u64) -> impl FnOnce(StoreError) -> SinkError {
    move |error| match error {
        StoreError::Conflict(_) => SinkError::Conflict { seq },
        other => SinkError::backend(other),
    }
}

#[async_trait]
impl AuditSink for StoreSink {
    async fn append(&self, record: &SealedRecord) -> Result<(), SinkError> {
        self.store.append_audit(&row(record, &self.chain)?).await.map_err(append_error(record.seq))
    }

    /// One transaction per batch: one commit (and one fsync) for every record queued
    /// while the previous one was written.
    async fn append_batch(&self, records: &[SealedRecord]) -> Result<(), SinkError> {
        let rows = records.iter().map(|record| row(record, &self.chain)).collect::<Result<Vec<_>, _>>()?;
        let first = records.first().map_or(0, |record| record.seq);
        self.store.append_audit_batch(rows).await.map_err(append_error(first))
    }

    async fn last(&self) -> Result<Option<AuditRecord>, SinkError> {
        let row = self.store.last_audit(&self.chain).await.map_err(SinkError::backend)?;
        row.as_ref().map(record_from_row).transpose()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rampart_audit::{AuditEvent, Decision, GENESIS_HASH, Outcome};

    use super::*;

    /// Rows 1..=len of a valid chain, as the sink stores them.
    fn rows(len: u64) -> Vec<AuditRow> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=len)
            .map(|seq| {
                let event = AuditEvent {
                    time: jiff::Timestamp::from_millisecond(1_750_000_000_000 + i64::try_from(seq).unwrap()).unwrap(),
                    request_id: None,
                    session: None,
                    principal: "token:ci".into(),
                    transport: "stdio".into(),
                    remote_addr: None,
                    method: "tools/call".into(),
                    tool: Some("system_health".into()),
                    toolbox: None,
                    task: None,
                    trace_id: None,
                    arguments: serde_json::Value::Null,
                    decision: Decision::Allow,
                    outcome: Outcome::Ok,
                    detail: None,
                    duration_us: seq,
                };
                let sealed = SealedRecord::seal(event, seq, prev.clone());
                prev = sealed.hash.clone();
                row(&sealed, "").unwrap()
            })
            .collect()
    }

    fn verify(rows: &[AuditRow]) -> Result<(), String> {
        let mut verifier = Verifier::new();
        for row in rows {
            push_row(&mut verifier, row).map_err(|e| e.to_string())?;
        }
        verifier.finish().map(drop).map_err(|e| e.to_string())
    }

    #[test]
    fn every_column_is_checked_against_the_sealed_record() {
        assert_eq!(verify(&rows(3)), Ok(()));
        type Edit = fn(&mut AuditRow);
        let edits: [(Edit, &str); 7] = [
            (|r| r.seq = 30, "its stored column 'seq' says '30' but the sealed record says '3'"),
            (
                |r| r.time_ms += 1,
                "its stored column 'time_ms' says '1750000000004' but the sealed record says '1750000000003 (2025-06-15T15:06:40.003Z)'",
            ),
            (
                |r| r.principal = "x".into(),
                "its stored column 'principal' says 'x' but the sealed record says 'token:ci'",
            ),
            (|r| r.tool = None, "its stored column 'tool' says 'NULL' but the sealed record says 'system_health'"),
            (
                |r| r.tool = Some("fs_write".into()),
                "its stored column 'tool' says 'fs_write' but the sealed record says 'system_health'",
            ),
            (
                |r| r.decision = "deny".into(),
                "its stored column 'decision' says 'deny' but the sealed record says 'allow'",
            ),
            (|r| r.outcome = String::new(), "its stored column 'outcome' says '' but the sealed record says 'ok'"),
        ];
        for (edit, says) in edits {
            let mut rows = rows(3);
            edit(&mut rows[2]);
            assert_eq!(verify(&rows), Err(format!("record 3 was edited: {says}")));
        }
    }

    /// Two rows whose `seq` columns were swapped: the chain's report (record 2 moved)
    /// comes before the column of record 3, read first.
    #[test]
    fn a_jump_in_the_chain_is_reported_before_the_columns_of_the_record_after_it() {
        let mut rows = rows(4);
        rows.swap(1, 2);
        (rows[1].seq, rows[2].seq) = (2, 3);
        assert_eq!(verify(&rows), Err("record 2 is out of order: it comes after record 3".to_owned()));
    }
}
