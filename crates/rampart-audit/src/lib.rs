//! Rampart's tamper-evident audit log.
//!
//! Audit is not logging: every MCP request that reaches the pipeline (and every failed
//! authentication) becomes one typed record, with secrets redacted, chained to the record
//! before it by SHA-256, written in order by one writer behind a bounded queue, and
//! checkable afterwards.
//!
//! - [`AuditEvent`]: what the pipeline reports (who, what, decision, outcome, duration).
//! - [`Redactor`]: secrets out of arguments and free text before they are recorded.
//! - [`AuditRecord`]: an event sealed into the chain (`seq`, `prev_hash`, `hash`); its
//!   docs define the canonical form the hash covers.
//! - [`AuditLog`]: the one writer; [`FailurePolicy`] says whether a request goes on when
//!   its record cannot be written, [`Commit`] whether a caller waits for its record to be
//!   stored.
//! - [`AuditSink`]: storage back-ends ([`JsonlSink`], [`MemorySink`]; the database one
//!   lives with the store).
//! - [`verify()`] / [`Verifier`]: find an edited, deleted or reordered record by number.
//! - [`Checkpoint`]: the chain's head signed with an Ed25519 key kept outside the store
//!   (its module docs define the signed message and the checkpoint file);
//!   [`Checkpointer`] makes the writer sign them, [`Verifier::with_checkpoints`] checks a
//!   log against them, detecting truncation and re-chaining.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use rampart_audit::*;
//!
//! let sink = Arc::new(JsonlSink::open("audit.jsonl").await?);
//! let log = AuditLog::start(sink, 1024, FailurePolicy::FailClosed).await?.with_commit(Commit::Synchronous);
//! let redactor = Redactor::new(["configured-api-key"]);
//! let event = AuditEvent {
//!     time: jiff::Timestamp::now(),
//!     request_id: Some("req-1".into()),
//!     session: None,
//!     principal: "token:ci".into(),
//!     transport: "stdio".into(),
//!     remote_addr: None,
//!     method: "tools/call".into(),
//!     tool: Some("system_health".into()),
//!     toolbox: None,
//!     task: None,
//!     trace_id: None,
//!     arguments: serde_json::json!({"password": "hunter2"}),
//!     decision: Decision::Allow,
//!     outcome: Outcome::Ok,
//!     detail: None,
//!     duration_us: micros(std::time::Duration::from_millis(3)),
//! }
//! .redacted(&redactor);
//! let receipt = log.record(event).await?;
//! assert_eq!(receipt.seq(), Some(1));
//! let summary = verify(read_jsonl("audit.jsonl")?)?;
//! assert_eq!(summary.last, log.head());
//! # Ok(()) }
//! ```

mod checkpoint;
mod checkpointer;
mod event;
mod jsonl;
mod keys;
mod log;
mod record;
mod redact;
mod sink;
mod verify;

pub use checkpoint::{
    CHECKPOINT_DOMAIN, Checkpoint, CheckpointError, SignatureProblem, VerifiedCheckpoint, append_checkpoint,
    read_checkpoints, signed_message, verify_checkpoints,
};
pub use checkpointer::Checkpointer;
pub use event::{AuditEvent, Decision, Outcome, format_time, micros, parse_time};
pub use jsonl::{JsonlRecords, JsonlSink, ReadError, TornTail, read_jsonl};
pub use keys::{CheckpointPublicKey, CheckpointSigner, KeyError, public_key_path};
pub use log::{AuditError, AuditLog, AuditReceipt, Commit, FailurePolicy};
pub use record::{AuditRecord, GENESIS_HASH, SealedRecord};
pub use redact::{MIN_SECRET_CHARS, REDACTED, Redactor, is_secret_key};
pub use sink::{AuditSink, MemorySink, SinkError};
pub use verify::{ChainHead, Verifier, VerifyError, VerifySummary, verify};

#[cfg(test)]
mod test_support;
