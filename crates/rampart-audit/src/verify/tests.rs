//! Tampering table: each way to change a 10-record chain, and what verification says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::test_support::chain;

/// Index of record `seq` in a chain from seq 1.
fn at(seq: u64) -> usize {
    usize::try_from(seq - 1).unwrap()
}

/// Re-seals every record from `from` on, as an attacker with the code would.
fn rehash_from(records: &mut [AuditRecord], from: u64) {
    for index in at(from)..records.len() {
        let prev_hash = if index == 0 { GENESIS_HASH.to_string() } else { records[index - 1].hash.clone() };
        let event = records[index].event.clone();
        let seq = records[index].seq;
        records[index] = AuditRecord::seal(event, seq, prev_hash);
    }
}

#[test]
fn tampering_table() {
    type Tamper = fn(&mut Vec<AuditRecord>);
    let cases: &[(&str, Tamper, Result<u64, VerifyError>)] = &[
        ("untouched", |_| {}, Ok(10)),
        ("empty", |r| r.clear(), Ok(0)),
        ("edited", |r| r[at(5)].event.principal = "token:admin".into(), Err(VerifyError::Edited { seq: 5 })),
        (
            "edited and re-hashed",
            |r| {
                r[at(5)].event.outcome = crate::Outcome::Denied;
                r[at(5)].hash = r[at(5)].compute_hash();
            },
            Err(VerifyError::BrokenChain { seq: 6 }),
        ),
        ("deleted", |r| drop(r.remove(at(5))), Err(VerifyError::Missing { after_seq: 4, next_seq: 6 })),
        ("deleted first", |r| drop(r.remove(0)), Err(VerifyError::Missing { after_seq: 0, next_seq: 2 })),
        ("deleted three", |r| drop(r.drain(at(4)..at(7))), Err(VerifyError::Missing { after_seq: 3, next_seq: 7 })),
        (
            "deleted and renumbered",
            |r| {
                r.remove(at(5));
                for record in &mut r[at(5)..] {
                    record.seq -= 1;
                }
            },
            Err(VerifyError::Edited { seq: 5 }),
        ),
        ("truncated at the end", |r| r.truncate(7), Ok(7)),
        ("swapped", |r| r.swap(at(5), at(6)), Err(VerifyError::Reordered { seq: 5, after_seq: 6 })),
        (
            "moved down",
            |r| {
                let moved = r.remove(at(5));
                r.insert(at(8), moved);
            },
            Err(VerifyError::Reordered { seq: 5, after_seq: 8 }),
        ),
        (
            "moved to the end",
            |r| {
                let moved = r.remove(at(3));
                r.push(moved);
            },
            Err(VerifyError::Reordered { seq: 3, after_seq: 10 }),
        ),
        (
            "duplicated",
            |r| {
                let copy = r[at(5)].clone();
                r.insert(at(6), copy);
            },
            Err(VerifyError::Reordered { seq: 5, after_seq: 5 }),
        ),
        (
            "re-hashed from the start",
            |r| {
                r[at(5)].event.principal = "token:admin".into();
                rehash_from(r, 1);
            },
            Ok(10),
        ),
    ];
    for (what, tamper, expected) in cases {
        let mut records = chain(10);
        tamper(&mut records);
        let got = verify(records.clone()).map(|summary| summary.records);
        assert_eq!(&got, expected, "{what}");
        if let Ok(summary) = verify(records.clone()) {
            let last = records.last().map_or_else(ChainHead::genesis, ChainHead::of);
            assert_eq!(summary.last, last, "{what}");
        }
    }
}

#[test]
fn the_streaming_verifier_reports_a_record_moved_far_down_as_missing() {
    let mut records = chain(10);
    let moved = records.remove(at(5));
    records.insert(at(8), moved);
    let mut verifier = Verifier::new();
    let error = records.iter().find_map(|record| verifier.push(record).err()).unwrap();
    assert_eq!(error, VerifyError::Missing { after_seq: 4, next_seq: 6 });
}

#[test]
fn a_gap_at_the_last_record_is_reported_by_finish() {
    let mut records = chain(10);
    records.remove(at(9));
    let mut verifier = Verifier::new();
    for record in &records {
        verifier.push(record).unwrap();
    }
    assert_eq!(verifier.finish(), Err(VerifyError::Missing { after_seq: 8, next_seq: 10 }));
}

#[test]
fn an_anchor_detects_truncation_and_rewriting() {
    let original = chain(10);
    let anchor = ChainHead::of(&original[at(10)]);
    let run = |records: &[AuditRecord]| {
        let mut verifier = Verifier::new().with_anchor(anchor.clone());
        for record in records {
            verifier.push(record)?;
        }
        verifier.finish()
    };
    assert_eq!(run(&original).unwrap().records, 10);
    assert_eq!(run(&original[..7]), Err(VerifyError::Truncated { last_seq: 7, anchor_seq: 10 }));
    let mut rewritten = original.clone();
    rewritten[at(5)].event.principal = "token:admin".into();
    rehash_from(&mut rewritten, 5);
    assert_eq!(run(&rewritten), Err(VerifyError::AnchorMismatch { seq: 10 }));
    let mut longer = chain(12);
    longer.truncate(11);
    assert_eq!(run(&longer).unwrap().records, 11);
}

#[test]
fn resume_checks_only_what_follows_a_known_head() {
    let records = chain(10);
    let mut verifier = Verifier::resume(ChainHead::of(&records[at(5)]));
    for record in &records[at(6)..] {
        verifier.push(record).unwrap();
    }
    let summary = verifier.finish().unwrap();
    assert_eq!((summary.records, summary.first_seq, summary.last.seq), (5, Some(6), 10));
    let mut wrong_start = Verifier::resume(ChainHead::of(&records[at(4)]));
    wrong_start.push(&records[at(6)]).unwrap();
    assert_eq!(wrong_start.finish(), Err(VerifyError::Missing { after_seq: 4, next_seq: 6 }));
}

#[test]
fn error_messages_name_the_record() {
    let cases = [
        (VerifyError::Edited { seq: 5 }, "record 5 was edited"),
        (VerifyError::Missing { after_seq: 4, next_seq: 6 }, "record 5 is missing: record 6 follows record 4"),
        (VerifyError::Missing { after_seq: 3, next_seq: 7 }, "records 4 to 6 are missing"),
        (VerifyError::Reordered { seq: 5, after_seq: 6 }, "record 5 is out of order: it comes after record 6"),
        (VerifyError::Reordered { seq: 5, after_seq: 5 }, "record 5 appears twice"),
        (VerifyError::BrokenChain { seq: 6 }, "record 6 does not link to record 5"),
        (VerifyError::AnchorMismatch { seq: 10 }, "record 10 does not match the anchor"),
        (VerifyError::Truncated { last_seq: 7, anchor_seq: 10 }, "ends at record 7 but the anchor is record 10"),
        (
            VerifyError::CheckpointMismatch { seq: 2000, after_seq: 1000 },
            "the log was rewritten between records 1001 and 2000: record 2000 does not match its signed checkpoint",
        ),
        (
            VerifyError::CheckpointMismatch { seq: 3, after_seq: 2 },
            "the log was rewritten at record 3: record 3 does not match its signed checkpoint",
        ),
        (
            VerifyError::DeletedAfter { last_seq: 1500, checkpoint_seq: 2000 },
            "records after 1500 were deleted: a signed checkpoint covers record 2000",
        ),
        (
            VerifyError::DeletedAfter { last_seq: 0, checkpoint_seq: 3 },
            "all records were deleted: a signed checkpoint covers record 3",
        ),
    ];
    for (error, expected) in cases {
        let message = error.to_string();
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }
}

/// Verifies `records` against checkpoints of `original` at `seqs`, signed with one key.
fn with_checkpoints(
    records: &[AuditRecord],
    original: &[AuditRecord],
    seqs: &[u64],
) -> Result<VerifySummary, VerifyError> {
    let signer = crate::CheckpointSigner::generate();
    let time = jiff::Timestamp::from_second(1_750_000_000).unwrap();
    let checkpoints = seqs.iter().map(|seq| {
        let head = ChainHead::of(&original[at(*seq)]);
        crate::Checkpoint::sign(&signer, &head, time).verify(signer.public_key()).unwrap()
    });
    let mut verifier = Verifier::new().with_checkpoints(checkpoints);
    for record in records {
        verifier.push(record)?;
    }
    verifier.finish()
}

#[test]
fn signed_checkpoints_detect_truncation_and_rechaining() {
    let original = chain(10);
    // Out of order, as two writers may append them.
    let seqs = [6, 3, 9];
    let summary = with_checkpoints(&original, &original, &seqs).unwrap();
    assert_eq!((summary.records, summary.checkpoints, summary.confirmed), (10, 3, 9));
    assert_eq!(
        with_checkpoints(&original[..7], &original, &seqs),
        Err(VerifyError::DeletedAfter { last_seq: 7, checkpoint_seq: 9 })
    );
    assert_eq!(
        with_checkpoints(&[], &original, &seqs),
        Err(VerifyError::DeletedAfter { last_seq: 0, checkpoint_seq: 9 })
    );
    let mut rewritten = original.clone();
    rewritten[at(5)].event.principal = "token:admin".into();
    rehash_from(&mut rewritten, 5);
    assert_eq!(verify(rewritten.clone()).map(|s| s.records), Ok(10), "the re-chained log verifies by itself");
    assert_eq!(
        with_checkpoints(&rewritten, &original, &seqs),
        Err(VerifyError::CheckpointMismatch { seq: 6, after_seq: 3 })
    );
    assert_eq!(
        with_checkpoints(&rewritten, &original, &[9]),
        Err(VerifyError::CheckpointMismatch { seq: 9, after_seq: 0 })
    );
    // A rewritten record is still named by the chain when it was not re-chained.
    let mut edited = original.clone();
    edited[at(2)].event.principal = "token:admin".into();
    assert_eq!(with_checkpoints(&edited, &original, &seqs), Err(VerifyError::Edited { seq: 2 }));
}

#[test]
fn checkpoints_before_a_resumed_start_are_not_checked() {
    let original = chain(10);
    let signer = crate::CheckpointSigner::generate();
    let time = jiff::Timestamp::from_second(1_750_000_000).unwrap();
    let signed = |seq: u64| crate::Checkpoint::sign(&signer, &ChainHead::of(&original[at(seq)]), time);
    let checkpoints = [2, 8].map(|seq| signed(seq).verify(signer.public_key()).unwrap());
    let mut verifier = Verifier::resume(ChainHead::of(&original[at(5)])).with_checkpoints(checkpoints);
    for record in &original[at(6)..] {
        verifier.push(record).unwrap();
    }
    let summary = verifier.finish().unwrap();
    assert_eq!((summary.checkpoints, summary.confirmed), (1, 8));
}
