//! The audit log's sink in the store (SQLite or PostgreSQL): one row per record, holding
//! the record's exact JSON so that verification re-hashes what was written.

use async_trait::async_trait;
use rampart_audit::{AuditRecord, AuditSink, SealedRecord, SinkError};
use rampart_store::{AuditRow, Store, StoreError};

/// [`AuditSink`] over the store.
#[derive(Debug, Clone)]
pub struct StoreSink {
    store: Store,
}

impl StoreSink {
    /// A sink writing to `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

/// A stored row back to a record.
///
/// # Errors
/// [`SinkError::Corrupt`]-like backend error when the JSON does not parse.
pub fn record_from_row(row: &AuditRow) -> Result<AuditRecord, SinkError> {
    serde_json::from_str(&row.record).map_err(SinkError::backend)
}

fn row(record: &SealedRecord) -> Result<AuditRow, SinkError> {
    Ok(AuditRow {
        seq: i64::try_from(record.seq).map_err(SinkError::backend)?,
        time_ms: record.event.time.as_millisecond(),
        principal: record.event.principal.clone(),
        tool: record.event.tool.clone(),
        record: record.line().to_owned(),
    })
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
        self.store.append_audit(&row(record)?).await.map_err(append_error(record.seq))
    }

    /// One transaction per batch: one commit (and one fsync) for every record queued
    /// while the previous one was written.
    async fn append_batch(&self, records: &[SealedRecord]) -> Result<(), SinkError> {
        let rows = records.iter().map(row).collect::<Result<Vec<_>, _>>()?;
        let first = records.first().map_or(0, |record| record.seq);
        self.store.append_audit_batch(rows).await.map_err(append_error(first))
    }

    async fn last(&self) -> Result<Option<AuditRecord>, SinkError> {
        let row = self.store.last_audit().await.map_err(SinkError::backend)?;
        row.as_ref().map(record_from_row).transpose()
    }
}
