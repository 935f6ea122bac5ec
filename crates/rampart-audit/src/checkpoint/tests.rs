//! Checkpoints: the signed message, signatures that verify and ones that must not, and
//! the checkpoint file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::test_support::ScratchDir;

fn head(seq: u64) -> ChainHead {
    ChainHead { seq, hash: format!("{seq:064x}") }
}

fn time() -> Timestamp {
    "2026-12-03T19:26:14.515987Z".parse().unwrap()
}

#[test]
fn the_signed_message_is_the_domain_then_seq_hash_and_time_each_on_a_line() {
    let message = signed_message(2000, &"ab".repeat(32), "2026-12-03T19:26:14.515Z".parse().unwrap(), None);
    assert_eq!(message, format!("rampart-audit-checkpoint/v1\n2000\n{}\n2026-12-03T19:26:14.515Z\n", "ab".repeat(32)));
    let chained = signed_message(2000, &"ab".repeat(32), "2026-12-03T19:26:14.515Z".parse().unwrap(), Some("r1"));
    assert_eq!(chained, format!("{message}chain r1\n"));
}

#[test]
fn a_checkpoint_of_a_replicas_chain_names_it_under_its_signature() {
    let signer = CheckpointSigner::generate();
    let checkpoint = Checkpoint::sign_chain(&signer, &head(7), time(), Some("replica-a"));
    assert!(checkpoint.json_line().contains("\"chain\":\"replica-a\""), "{}", checkpoint.json_line());
    assert_eq!(checkpoint.verify(signer.public_key()).unwrap().chain(), "replica-a");
    assert_eq!(Checkpoint::sign(&signer, &head(7), time()).verify(signer.public_key()).unwrap().chain(), "");
    // Moved to another chain, or made the default chain's: the signature no longer holds.
    for chain in [Some("replica-b".to_owned()), None] {
        let moved = Checkpoint { chain, ..checkpoint.clone() };
        assert!(matches!(moved.verify(signer.public_key()), Err(SignatureProblem::Mismatch { .. })));
    }
}

#[test]
fn a_checkpoint_verifies_with_its_key_only() {
    let signer = CheckpointSigner::generate();
    let checkpoint = Checkpoint::sign(&signer, &head(7), time());
    assert_eq!(checkpoint.time.to_string(), "2026-12-03T19:26:14.515Z", "to the millisecond");
    assert_eq!((checkpoint.signature.len(), checkpoint.key_id.as_str()), (128, signer.key_id()));
    let verified = checkpoint.verify(signer.public_key()).unwrap();
    assert_eq!((verified.head(), verified.time()), (&head(7), checkpoint.time));
    let parsed: Checkpoint = serde_json::from_str(&checkpoint.json_line()).unwrap();
    assert_eq!(parsed, checkpoint, "the line reproduces the signed checkpoint");

    let other = CheckpointSigner::generate();
    assert_eq!(
        checkpoint.verify(other.public_key()),
        Err(SignatureProblem::OtherKey { key_id: signer.key_id().into(), expected: other.key_id().into() })
    );
    let mismatch = Err(SignatureProblem::Mismatch { key_id: signer.key_id().into() });
    type Edit = fn(&mut Checkpoint);
    let edits: [(Edit, Result<VerifiedCheckpoint, SignatureProblem>); 6] = [
        (|c| c.seq += 1, mismatch.clone()),
        (|c| c.hash = format!("{:064x}", 8), mismatch.clone()),
        (|c| c.time += jiff::SignedDuration::from_millis(1), mismatch.clone()),
        (|c| c.signature.replace_range(0..2, if c.signature.starts_with("00") { "01" } else { "00" }), mismatch),
        (|c| c.signature.make_ascii_uppercase(), Err(SignatureProblem::MalformedSignature)),
        (|c| c.hash.push('0'), Err(SignatureProblem::MalformedHash)),
    ];
    for (edit, expected) in edits {
        let mut edited = checkpoint.clone();
        edit(&mut edited);
        assert_eq!(edited.verify(signer.public_key()), expected, "{edited:?}");
    }
    // Another key that claims this key's id.
    let mut forged = Checkpoint::sign(&other, &head(7), time());
    forged.key_id = signer.key_id().into();
    assert_eq!(forged.verify(signer.public_key()), Err(SignatureProblem::Mismatch { key_id: signer.key_id().into() }));
}

#[test]
fn the_checkpoint_file_is_appended_and_read_back_by_line() {
    let dir = ScratchDir::new();
    let path = dir.file("sub/audit-checkpoints.jsonl");
    let signer = CheckpointSigner::generate();
    let checkpoints: Vec<Checkpoint> = [3, 6].map(|seq| Checkpoint::sign(&signer, &head(seq), time())).into();
    for checkpoint in &checkpoints {
        append_checkpoint(&path, checkpoint).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, format!("{}\n{}\n", checkpoints[0].json_line(), checkpoints[1].json_line()));
    assert_eq!(read_checkpoints(&path).unwrap(), vec![(1, checkpoints[0].clone()), (2, checkpoints[1].clone())]);
    let verified = verify_checkpoints(&path, signer.public_key()).unwrap();
    assert_eq!(verified.iter().map(|c| c.head().seq).collect::<Vec<_>>(), [3, 6]);

    let other = CheckpointSigner::generate();
    let error = verify_checkpoints(&path, other.public_key()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("checkpoint at line 1 of {} (record 3): bad signature: ", path.display())),
        "{message}"
    );
}

#[test]
fn a_line_cut_short_is_reported_by_number_and_the_next_checkpoint_starts_a_line() {
    let dir = ScratchDir::new();
    let path = dir.file("audit-checkpoints.jsonl");
    let signer = CheckpointSigner::generate();
    let first = Checkpoint::sign(&signer, &head(3), time());
    std::fs::write(&path, format!("{}\n\n{{\"seq\":6,\"ha", first.json_line())).unwrap();
    let next = Checkpoint::sign(&signer, &head(9), time());
    append_checkpoint(&path, &next).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with(&format!("\"ha\n{}\n", next.json_line())), "{text}");
    match read_checkpoints(&path) {
        Err(CheckpointError::Malformed { line: 3, path: named, .. }) => assert_eq!(named, path),
        other => panic!("line 3 is malformed: {other:?}"),
    }
    std::fs::write(&path, "{\"seq\":1,\"hash\":\"00\",\"time\":\"2026-12-03T19:26:14.515Z\",\"key_id\":\"x\",\"signature\":\"y\",\"extra\":1}\n").unwrap();
    assert!(matches!(read_checkpoints(&path), Err(CheckpointError::Malformed { line: 1, .. })), "unknown fields");
    let missing = read_checkpoints(&dir.file("missing.jsonl")).unwrap_err();
    assert!(matches!(missing, CheckpointError::Io { .. }) && missing.to_string().contains("missing.jsonl"));
}
