//! [`Checkpointer`]: when and where the [`AuditLog`](crate::AuditLog)'s writer signs
//! checkpoints of the stored head, and the writer's bookkeeping of them ([`Checkpoints`]).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::time::Instant;

use crate::{ChainHead, Checkpoint, CheckpointError, CheckpointSigner, append_checkpoint, event::format_time};

/// After a checkpoint could not be written, the next attempt waits this long (the final
/// one at a drain does not): a broken disk should not cost a failed write per batch.
const RETRY_DELAY: Duration = Duration::from_secs(5);

/// Signs checkpoints for an [`AuditLog`](crate::AuditLog)
/// ([`AuditLog::with_checkpoints`](crate::AuditLog::with_checkpoints)): a key, a
/// checkpoint file, and when to sign.
///
/// The writer signs the head the sink has confirmed stored, never a record still queued
/// or held through an outage:
/// - once the head is [`Self::every`] records past the last checkpoint (default 1000);
/// - [`Self::interval`] after the first record stored since the last checkpoint (default
///   60 s), even if no further record arrives: no record stays uncovered longer;
/// - once more when the log drains ([`AuditLog::drain`](crate::AuditLog::drain), at
///   shutdown), if the head moved since the last checkpoint.
///
/// Each checkpoint is appended to the file ([`append_checkpoint`]) and logged (tracing,
/// `info`, target `rampart_audit::checkpointer`, with `seq`, `hash`, `time`, `key_id`,
/// `signature`), so a log shipper can keep a second copy. A checkpoint that cannot be
/// written is logged as an error and tried again at the next trigger (at least 5 s later);
/// calls are not refused for it.
#[derive(Debug)]
pub struct Checkpointer {
    signer: CheckpointSigner,
    file: PathBuf,
    every: u64,
    interval: Duration,
    /// The chain its log writes, when not the default one.
    chain: Option<String>,
}

impl Checkpointer {
    /// Records between checkpoints unless [`Self::every`] says otherwise.
    pub const DEFAULT_EVERY: u64 = 1000;
    /// Longest a stored record waits for a checkpoint unless [`Self::interval`] says
    /// otherwise.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

    /// Signs with `signer` into the checkpoint file `file`, with the default triggers.
    pub fn new(signer: CheckpointSigner, file: impl Into<PathBuf>) -> Self {
        Self { signer, file: file.into(), every: Self::DEFAULT_EVERY, interval: Self::DEFAULT_INTERVAL, chain: None }
    }

    /// Labels its checkpoints with `chain`, the one its log writes (a replica's own).
    #[must_use]
    pub fn for_chain(mut self, chain: &str) -> Self {
        self.chain = (!chain.is_empty()).then(|| chain.to_owned());
        self
    }

    /// Signs once the head is `records` past the last checkpoint; 0: never by count.
    pub fn every(mut self, records: u64) -> Self {
        self.every = records;
        self
    }

    /// Signs `interval` after the first record stored since the last checkpoint;
    /// [`Duration::ZERO`]: never by time.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The checkpoint file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The signing key.
    pub fn signer(&self) -> &CheckpointSigner {
        &self.signer
    }

    /// Signs `head` now and appends the checkpoint to the file. Blocking.
    ///
    /// # Errors
    /// [`CheckpointError::Io`] naming the file.
    pub fn write(&self, head: &ChainHead) -> Result<Checkpoint, CheckpointError> {
        let checkpoint = Checkpoint::sign_chain(&self.signer, head, jiff::Timestamp::now(), self.chain.as_deref());
        append_checkpoint(&self.file, &checkpoint)?;
        Ok(checkpoint)
    }
}

/// The writer's checkpoint state: what the last checkpoint covers and when the next is due.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    checkpointer: Arc<Checkpointer>,
    /// The head the last checkpoint covers (at first: the head when checkpoints began).
    covered: ChainHead,
    /// When the records stored since `covered` must be covered (the interval trigger).
    due: Option<Instant>,
    /// After a failed write: no attempt before this, except a drain's.
    retry_at: Option<Instant>,
}

impl Checkpoints {
    /// Checkpoints from `head` on (the records up to it are not signed by this writer).
    pub(crate) fn new(checkpointer: Checkpointer, head: ChainHead) -> Self {
        Self { checkpointer: Arc::new(checkpointer), covered: head, due: None, retry_at: None }
    }

    /// When the writer must wake up, with no record arriving, to sign the head: the
    /// interval trigger (or its retry). `None`: nothing is waiting for it.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let due = self.due?;
        Some(self.retry_at.map_or(due, |retry_at| retry_at.max(due)))
    }

    /// The sink has confirmed records up to `head` (or a deadline passed): signs `head` if
    /// the count or the interval says so.
    pub(crate) async fn tick(&mut self, head: &ChainHead) {
        if head.seq <= self.covered.seq {
            // Nothing new to sign (a head re-read lower than the last checkpoint included):
            // no deadline either, or the writer would wake up for nothing.
            self.due = None;
            return;
        }
        let now = Instant::now();
        let interval = self.checkpointer.interval;
        if self.due.is_none() && !interval.is_zero() {
            self.due = Some(now + interval);
        }
        let every = self.checkpointer.every;
        let by_count = every > 0 && head.seq - self.covered.seq >= every;
        let by_time = self.due.is_some_and(|due| now >= due);
        if (by_count || by_time) && self.retry_at.is_none_or(|retry_at| now >= retry_at) {
            self.write(head).await;
        }
    }

    /// The log drains: signs `head` if it moved since the last checkpoint.
    pub(crate) async fn flush(&mut self, head: &ChainHead) {
        if *head != self.covered {
            self.write(head).await;
        }
    }

    async fn write(&mut self, head: &ChainHead) {
        let checkpointer = Arc::clone(&self.checkpointer);
        let signed = head.clone();
        let written = tokio::task::spawn_blocking(move || checkpointer.write(&signed)).await;
        let file = self.checkpointer.file().display();
        match written {
            Ok(Ok(checkpoint)) => {
                tracing::info!(
                    seq = checkpoint.seq,
                    hash = %checkpoint.hash,
                    time = %format_time(checkpoint.time),
                    key_id = %checkpoint.key_id,
                    signature = %checkpoint.signature,
                    file = %file,
                    "audit checkpoint signed"
                );
                self.covered = head.clone();
                self.due = None;
                self.retry_at = None;
            }
            Ok(Err(error)) => {
                tracing::error!(%error, seq = head.seq, "audit checkpoint not written; trying again later");
                self.retry_at = Some(Instant::now() + RETRY_DELAY);
            }
            Err(error) => {
                tracing::error!(%error, seq = head.seq, file = %file, "audit checkpoint not written; trying again later");
                self.retry_at = Some(Instant::now() + RETRY_DELAY);
            }
        }
    }
}

#[cfg(test)]
mod tests;
