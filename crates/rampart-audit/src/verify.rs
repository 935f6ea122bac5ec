//! Verification of a hash chain: [`verify`] over a whole sequence, [`Verifier`] one record
//! at a time (to stream from a database).
//!
//! What a chain proves by itself: no record was edited, removed from the middle, inserted
//! or moved. What it cannot prove by itself: that records were not cut off at the end
//! (the shorter chain is valid), nor that the whole log was not rewritten and re-chained by
//! whoever can write the store. For that, check it against **signed checkpoints**
//! ([`Verifier::with_checkpoints`]; see [`Checkpoint`](crate::Checkpoint)), or against an
//! **anchor** — the [`ChainHead`] of a previous verification ([`VerifySummary::last`]),
//! kept somewhere the log's writer cannot change ([`Verifier::with_anchor`]).

use std::collections::VecDeque;

use crate::{AuditRecord, GENESIS_HASH, VerifiedCheckpoint};

/// A position in the chain: a record's `seq` and `hash`. `seq` 0 with [`GENESIS_HASH`]
/// stands for the empty chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The record's sequence number (0: before the first record).
    pub seq: u64,
    /// The record's hash (lower-case hex SHA-256).
    pub hash: String,
}

impl ChainHead {
    /// The head of the empty chain: seq 0, [`GENESIS_HASH`].
    pub fn genesis() -> Self {
        Self { seq: 0, hash: GENESIS_HASH.to_string() }
    }

    /// The head after `record`.
    pub fn of(record: &AuditRecord) -> Self {
        Self { seq: record.seq, hash: record.hash.clone() }
    }
}

/// The first problem found in a chain. Each variant names the sequence number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The record's hash does not match its content: it was edited after it was written.
    #[error("record {seq} was edited: its hash does not match its content")]
    Edited {
        /// The edited record.
        seq: u64,
    },
    /// Sequence numbers jump: the records between `after_seq` and `next_seq` were deleted.
    #[error("{}", missing_message(*after_seq, *next_seq))]
    Missing {
        /// The last record before the gap (0: the gap starts at the beginning).
        after_seq: u64,
        /// The first record after the gap.
        next_seq: u64,
    },
    /// A record's sequence number is not greater than the one before it: records were
    /// moved (or duplicated).
    #[error("{}", reordered_message(*seq, *after_seq))]
    Reordered {
        /// The out-of-place record.
        seq: u64,
        /// The record it follows in the sequence read.
        after_seq: u64,
    },
    /// The record's `prev_hash` is not the previous record's hash: the previous record
    /// (or one before it) was edited and re-hashed, or replaced.
    #[error("record {seq} does not link to record {}: its prev_hash does not match (an earlier record was changed and re-hashed)", seq.saturating_sub(1))]
    BrokenChain {
        /// The record whose link is broken.
        seq: u64,
    },
    /// The anchor's record is present but its hash differs: the chain was rewritten.
    #[error("record {seq} does not match the anchor's hash: the chain was rewritten")]
    AnchorMismatch {
        /// The anchor's sequence number.
        seq: u64,
    },
    /// The chain ends before the anchor: records were cut off at the end.
    #[error("the log ends at record {last_seq} but the anchor is record {anchor_seq}: records were cut off")]
    Truncated {
        /// The last record read (0: none).
        last_seq: u64,
        /// The anchor's sequence number.
        anchor_seq: u64,
    },
    /// The record at a signed checkpoint's seq has another hash: the log was rewritten
    /// (and re-chained, or the chain would have said so) somewhere after the last record
    /// a checkpoint confirmed, up to this one.
    #[error("{}", rewritten_message(*after_seq, *seq))]
    CheckpointMismatch {
        /// The record that does not match its checkpoint.
        seq: u64,
        /// The last record a checkpoint confirmed before it (0: none; with
        /// [`Verifier::resume`], at least the start point).
        after_seq: u64,
    },
    /// The chain ends before a signed checkpoint's seq: its newest records were deleted.
    #[error("{}", deleted_message(*last_seq, *checkpoint_seq))]
    DeletedAfter {
        /// The last record read (0: none).
        last_seq: u64,
        /// The highest seq a signed checkpoint covers.
        checkpoint_seq: u64,
    },
}

fn rewritten_message(after_seq: u64, seq: u64) -> String {
    let first = after_seq.saturating_add(1);
    let span = if first < seq { format!("between records {first} and {seq}") } else { format!("at record {seq}") };
    format!("the log was rewritten {span}: record {seq} does not match its signed checkpoint")
}

fn deleted_message(last_seq: u64, checkpoint_seq: u64) -> String {
    let deleted = if last_seq == 0 { "all records were".to_owned() } else { format!("records after {last_seq} were") };
    format!("{deleted} deleted: a signed checkpoint covers record {checkpoint_seq}")
}

fn missing_message(after_seq: u64, next_seq: u64) -> String {
    let first = after_seq.saturating_add(1);
    let last = next_seq.saturating_sub(1);
    let which = if first == last { format!("record {first} is") } else { format!("records {first} to {last} are") };
    format!("{which} missing: record {next_seq} follows record {after_seq}")
}

fn reordered_message(seq: u64, after_seq: u64) -> String {
    if seq == after_seq {
        format!("record {seq} appears twice")
    } else {
        format!("record {seq} is out of order: it comes after record {after_seq}")
    }
}

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    /// How many records were checked.
    pub records: u64,
    /// The first record's sequence number (`None`: no records).
    pub first_seq: Option<u64>,
    /// The last record's seq and hash (the start point when there were none). Keep it as
    /// an anchor: a later verification with [`Verifier::with_anchor`] detects records cut
    /// off at the end, which the chain alone cannot.
    pub last: ChainHead,
    /// How many signed checkpoints matched their records ([`Verifier::with_checkpoints`]).
    pub checkpoints: u64,
    /// The highest seq a signed checkpoint confirmed (when none did: 0, or the start point
    /// of [`Verifier::resume`]): the records after it are not covered by a checkpoint yet.
    pub confirmed: u64,
}

/// Checks records one at a time, in the order stored. Fail fast: after an error, stop.
///
/// A jump in sequence numbers is reported one record later (by the next [`Self::push`]
/// or by [`Self::finish`]): if the next record goes back, the jump was a reordering
/// ([`VerifyError::Reordered`]), otherwise a deletion ([`VerifyError::Missing`]).
#[derive(Debug, Clone)]
pub struct Verifier {
    head: ChainHead,
    records: u64,
    first_seq: Option<u64>,
    /// A jump seen at the last record, not yet reported: (before, after).
    gap: Option<(u64, u64)>,
    anchor: Option<ChainHead>,
    /// Signed heads not reached yet, by ascending seq.
    checkpoints: VecDeque<ChainHead>,
    /// Checkpoints matched so far.
    matched: u64,
    /// The last record a checkpoint confirmed (or the start point).
    confirmed: u64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    /// A verifier for a chain that starts at seq 1 with [`GENESIS_HASH`].
    pub fn new() -> Self {
        Self::resume(ChainHead::genesis())
    }

    /// A verifier for the records after `head` (verified earlier), e.g. to check only
    /// what was appended since the last verification.
    pub fn resume(head: ChainHead) -> Self {
        let confirmed = head.seq;
        Self {
            head,
            records: 0,
            first_seq: None,
            gap: None,
            anchor: None,
            checkpoints: VecDeque::new(),
            matched: 0,
            confirmed,
        }
    }

    /// Also require the record at `anchor.seq` to be present with `anchor.hash`.
    pub fn with_anchor(mut self, anchor: ChainHead) -> Self {
        self.anchor = Some(anchor);
        self
    }

    /// Also require, for every checkpoint, the record at its seq to be present with its
    /// hash: [`VerifyError::CheckpointMismatch`] names the first record that differs (the
    /// log was rewritten after the last matching checkpoint), [`VerifyError::DeletedAfter`]
    /// a log that ends before a checkpoint. Checkpoints at or before the start point
    /// ([`Self::resume`]) are not checked. In any order; may be called more than once.
    pub fn with_checkpoints(mut self, checkpoints: impl IntoIterator<Item = VerifiedCheckpoint>) -> Self {
        let start = self.head.seq;
        self.checkpoints.extend(checkpoints.into_iter().map(|c| c.head().clone()).filter(|head| head.seq > start));
        self.checkpoints.make_contiguous().sort_by_key(|head| head.seq);
        self
    }

    /// Checks the next record.
    ///
    /// # Errors
    /// The first problem: see [`VerifyError`].
    pub fn push(&mut self, record: &AuditRecord) -> Result<(), VerifyError> {
        if let Some((after_seq, next_seq)) = self.gap.take() {
            return Err(if record.seq <= next_seq {
                VerifyError::Reordered { seq: record.seq, after_seq: next_seq }
            } else {
                VerifyError::Missing { after_seq, next_seq }
            });
        }
        if !record.is_intact() {
            return Err(VerifyError::Edited { seq: record.seq });
        }
        let expected = self.head.seq.saturating_add(1);
        if record.seq < expected {
            return Err(VerifyError::Reordered { seq: record.seq, after_seq: self.head.seq });
        }
        if record.seq > expected {
            self.gap = Some((self.head.seq, record.seq));
        } else if record.prev_hash != self.head.hash {
            return Err(VerifyError::BrokenChain { seq: record.seq });
        }
        if let Some(anchor) = &self.anchor
            && anchor.seq == record.seq
            && anchor.hash != record.hash
        {
            return Err(VerifyError::AnchorMismatch { seq: record.seq });
        }
        self.match_checkpoints(record)?;
        self.head = ChainHead::of(record);
        self.records += 1;
        self.first_seq.get_or_insert(record.seq);
        Ok(())
    }

    /// Checks `record` against the checkpoints of its seq; drops those before it (a record
    /// missing there is reported as such).
    fn match_checkpoints(&mut self, record: &AuditRecord) -> Result<(), VerifyError> {
        while let Some(checkpoint) = self.checkpoints.front().filter(|checkpoint| checkpoint.seq <= record.seq) {
            if checkpoint.seq == record.seq {
                if checkpoint.hash != record.hash {
                    return Err(VerifyError::CheckpointMismatch { seq: record.seq, after_seq: self.confirmed });
                }
                self.matched += 1;
                self.confirmed = record.seq;
            }
            self.checkpoints.pop_front();
        }
        Ok(())
    }

    /// Whether the last record pushed jumped ahead in sequence numbers: the next
    /// [`Self::push`] (or [`Self::finish`]) reports that jump, as a deletion or a
    /// reordering, whatever that record is. A caller that checks more about each record
    /// (the store's columns) leaves its own finding about the record after the jump to
    /// this earlier problem.
    pub fn has_pending_gap(&self) -> bool {
        self.gap.is_some()
    }

    /// Ends the verification.
    ///
    /// # Errors
    /// A jump at the last record ([`VerifyError::Missing`]), or a chain that ends before
    /// the anchor ([`VerifyError::Truncated`]) or a checkpoint ([`VerifyError::DeletedAfter`],
    /// naming the highest).
    pub fn finish(self) -> Result<VerifySummary, VerifyError> {
        if let Some((after_seq, next_seq)) = self.gap {
            return Err(VerifyError::Missing { after_seq, next_seq });
        }
        if let Some(anchor) = &self.anchor
            && self.head.seq < anchor.seq
        {
            return Err(VerifyError::Truncated { last_seq: self.head.seq, anchor_seq: anchor.seq });
        }
        if let Some(checkpoint) = self.checkpoints.back() {
            return Err(VerifyError::DeletedAfter { last_seq: self.head.seq, checkpoint_seq: checkpoint.seq });
        }
        Ok(VerifySummary {
            records: self.records,
            first_seq: self.first_seq,
            last: self.head,
            checkpoints: self.matched,
            confirmed: self.confirmed,
        })
    }
}

/// Verifies a whole chain from seq 1, in the order given.
///
/// When records are missing, the rest is searched for them, so that a record moved
/// further down is reported as [`VerifyError::Reordered`] rather than missing.
///
/// # Errors
/// The first problem: see [`VerifyError`].
pub fn verify(records: impl IntoIterator<Item = AuditRecord>) -> Result<VerifySummary, VerifyError> {
    let mut verifier = Verifier::new();
    let mut records = records.into_iter();
    let mut previous_seq = 0;
    while let Some(record) = records.next() {
        match verifier.push(&record) {
            Ok(()) => previous_seq = record.seq,
            Err(VerifyError::Missing { after_seq, next_seq }) => {
                return Err(find_moved(after_seq, next_seq, previous_seq, record, records));
            }
            Err(error) => return Err(error),
        }
    }
    verifier.finish()
}

/// After a gap between `after_seq` and `next_seq`: a record from the gap that appears
/// later (from `current` on) was moved; otherwise the gap is a deletion.
fn find_moved(
    after_seq: u64,
    next_seq: u64,
    mut previous_seq: u64,
    current: AuditRecord,
    rest: impl Iterator<Item = AuditRecord>,
) -> VerifyError {
    for record in std::iter::once(current).chain(rest) {
        if record.seq > after_seq && record.seq < next_seq {
            return VerifyError::Reordered { seq: record.seq, after_seq: previous_seq };
        }
        previous_seq = record.seq;
    }
    VerifyError::Missing { after_seq, next_seq }
}

#[cfg(test)]
mod tests;
