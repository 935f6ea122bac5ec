//! Where records go: the [`AuditSink`] trait that storage back-ends implement, its error,
//! and [`MemorySink`] for tests.

use std::{
    path::PathBuf,
    sync::{Mutex, PoisonError},
};

use async_trait::async_trait;

use crate::{AuditRecord, SealedRecord};

/// Durable, append-only storage of audit records. [`AuditLog`](crate::AuditLog) is its
/// only writer: one task calls `append`/`append_batch` in chain order and never
/// concurrently.
#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Stores `record` durably (flushed to stable storage, or committed) before
    /// returning. A sink that stores text stores [`SealedRecord::line`], byte for byte: it
    /// is what the hash was computed over (with the hash itself added).
    ///
    /// # Errors
    /// The record was not stored. A sink should then hold nothing of it (roll back a
    /// partial write); if it cannot guarantee that, the writer re-reads [`Self::last`]
    /// before the next append, so the chain continues from what was really stored.
    async fn append(&self, record: &SealedRecord) -> Result<(), SinkError>;

    /// Stores `records` (consecutive, in order) durably, all or none; one flush or one
    /// transaction for the lot. The default appends them one by one.
    ///
    /// # Errors
    /// As [`Self::append`]; some records of the batch may then be stored, which the next
    /// [`Self::last`] reveals.
    async fn append_batch(&self, records: &[SealedRecord]) -> Result<(), SinkError> {
        for record in records {
            self.append(record).await?;
        }
        Ok(())
    }

    /// The record with the highest seq, to continue the chain after a restart (`None`:
    /// the log is empty).
    ///
    /// # Errors
    /// The store cannot be read, or its last record is malformed.
    async fn last(&self) -> Result<Option<AuditRecord>, SinkError>;
}

/// Why a sink could not store or read records.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A file operation failed.
    #[error("audit file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A stored record cannot be read back.
    #[error("audit file {path}: the record at byte {offset} is malformed: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the record's line.
        offset: u64,
        /// What is wrong with it.
        message: String,
    },
    /// The store's last record does not match its own hash: it was edited. Nothing is
    /// chained onto it until the log is verified and repaired.
    #[error(
        "audit store: the last record ({seq}) does not match its hash; run `rampart audit verify` before writing more"
    )]
    TamperedLast {
        /// Its sequence number.
        seq: u64,
    },
    /// A record does not continue the stored chain: another writer appended to the same
    /// store, or two writers share one sink.
    #[error(
        "audit store: record {seq} does not continue the stored chain, whose last record is {last_seq} (another writer?)"
    )]
    OutOfOrder {
        /// The refused record.
        seq: u64,
        /// The last record stored (0: none).
        last_seq: u64,
    },
    /// Record `seq` exists already: another writer (a second server on the same
    /// database, `rampart token` from the command line) appended to the same log since
    /// this one read its head. Nothing of the refused batch was stored; the
    /// [`AuditLog`](crate::AuditLog) writer re-reads the head and chains the batch after
    /// the other writer's records at once, without counting it as an outage.
    #[error("audit store: record {seq} exists already: another writer appended to the same log")]
    Conflict {
        /// The first sequence number of the refused batch.
        seq: u64,
    },
    /// A back-end's own error (database driver, network).
    #[error("audit store: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The sink refuses writes for a stated reason (e.g. a test's simulated outage).
    #[error("audit store unavailable: {0}")]
    Unavailable(String),
}

impl SinkError {
    /// Wraps a back-end's error.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(error))
    }
}

/// Keeps records in memory. For tests, and for running without persistence.
#[derive(Debug, Default)]
pub struct MemorySink {
    records: Mutex<Vec<AuditRecord>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every record stored, in order.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[async_trait]
impl AuditSink for MemorySink {
    async fn append(&self, record: &SealedRecord) -> Result<(), SinkError> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner).push(record.record().clone());
        Ok(())
    }

    async fn append_batch(&self, records: &[SealedRecord]) -> Result<(), SinkError> {
        let mut stored = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        stored.extend(records.iter().map(|record| record.record().clone()));
        Ok(())
    }

    async fn last(&self) -> Result<Option<AuditRecord>, SinkError> {
        Ok(self.records.lock().unwrap_or_else(PoisonError::into_inner).last().cloned())
    }
}
