//! The writer's checkpoints: by count, by time, at a drain, and only of what is stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;

use super::*;
use crate::{
    AuditLog, AuditRecord, AuditSink, Commit, FailurePolicy, MemorySink, SealedRecord, SinkError, Verifier,
    read_checkpoints, test_support::ScratchDir, test_support::event, verify_checkpoints,
};

/// A synchronous log over `sink` (each awaited record is a batch of its own) signing with
/// `checkpointer`.
async fn log(sink: Arc<dyn AuditSink>, checkpointer: Checkpointer) -> AuditLog {
    AuditLog::start(sink, 64, FailurePolicy::FailClosed)
        .await
        .unwrap()
        .with_commit(Commit::Synchronous)
        .with_checkpoints(checkpointer)
}

fn checkpointer(dir: &ScratchDir) -> Checkpointer {
    Checkpointer::new(CheckpointSigner::generate(), dir.file("audit-checkpoints.jsonl"))
}

/// The seqs of the checkpoint file's lines, in file order (none when there is no file).
fn seqs(dir: &ScratchDir) -> Vec<u64> {
    let path = dir.file("audit-checkpoints.jsonl");
    if !path.exists() {
        return Vec::new();
    }
    read_checkpoints(&path).unwrap().into_iter().map(|(_, checkpoint)| checkpoint.seq).collect()
}

async fn record(log: &AuditLog, count: u64) {
    for n in 0..count {
        log.record(event(n)).await.unwrap();
    }
}

#[tokio::test]
async fn every_n_records_and_once_more_at_shutdown() {
    let dir = ScratchDir::new();
    let sink = Arc::new(MemorySink::new());
    let checkpointer = checkpointer(&dir).every(3).interval(Duration::ZERO);
    let public = checkpointer.signer().public_key().clone();
    let log = log(sink.clone(), checkpointer).await;
    record(&log, 7).await;
    assert_eq!(seqs(&dir), [3, 6]);
    log.shutdown().await;
    assert_eq!(seqs(&dir), [3, 6, 7], "the head moved since the last one");

    let checkpoints = verify_checkpoints(&dir.file("audit-checkpoints.jsonl"), &public).unwrap();
    let mut verifier = Verifier::new().with_checkpoints(checkpoints);
    for record in sink.records() {
        verifier.push(&record).unwrap();
    }
    let summary = verifier.finish().unwrap();
    assert_eq!((summary.checkpoints, summary.confirmed), (3, 7), "each covers the stored record of its seq");
}

#[tokio::test]
async fn within_the_interval_of_a_stored_record_without_further_records() {
    let dir = ScratchDir::new();
    let checkpointer = checkpointer(&dir).every(0).interval(Duration::from_millis(200));
    let log = log(Arc::new(MemorySink::new()), checkpointer).await;
    record(&log, 2).await;
    assert_eq!(seqs(&dir), Vec::<u64>::new(), "not before the interval");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while seqs(&dir).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seqs(&dir), [2], "the idle writer woke up to sign the head");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(seqs(&dir), [2], "nothing new, nothing signed");
    log.shutdown().await;
    assert_eq!(seqs(&dir), [2], "the head did not move since");
}

#[tokio::test]
async fn a_drain_signs_the_head_if_it_moved() {
    let dir = ScratchDir::new();
    let log = log(Arc::new(MemorySink::new()), checkpointer(&dir).interval(Duration::ZERO)).await;
    log.drain(Duration::from_secs(1)).await.unwrap();
    assert_eq!(seqs(&dir), Vec::<u64>::new(), "an empty log has nothing to sign");
    record(&log, 2).await;
    assert_eq!(seqs(&dir), Vec::<u64>::new(), "1000 records by default");
    log.drain(Duration::from_secs(1)).await.unwrap();
    log.drain(Duration::from_secs(1)).await.unwrap();
    assert_eq!(seqs(&dir), [2]);
}

/// Refuses every append; its stored head is always 5.
struct DownSink;

#[async_trait]
impl AuditSink for DownSink {
    async fn append(&self, _: &SealedRecord) -> Result<(), SinkError> {
        Err(SinkError::Unavailable("down".into()))
    }

    async fn last(&self) -> Result<Option<AuditRecord>, SinkError> {
        Ok(Some(AuditRecord::seal(event(5), 5, crate::GENESIS_HASH)))
    }
}

#[tokio::test]
async fn only_what_the_sink_confirmed_is_signed() {
    let dir = ScratchDir::new();
    let log = AuditLog::start(Arc::new(DownSink), 64, FailurePolicy::FailClosed)
        .await
        .unwrap()
        .with_checkpoints(checkpointer(&dir).every(1).interval(Duration::ZERO));
    log.record(event(1)).await.unwrap();
    assert_eq!(log.drain(Duration::from_millis(100)).await.unwrap(), 1, "the held record was given up");
    assert_eq!(seqs(&dir), Vec::<u64>::new(), "neither the record held nor the head from before is signed");
}

#[tokio::test]
async fn a_checkpoint_that_cannot_be_written_does_not_stop_the_log() {
    let dir = ScratchDir::new();
    std::fs::write(dir.file("not-a-directory"), "").unwrap();
    let checkpointer = Checkpointer::new(CheckpointSigner::generate(), dir.file("not-a-directory/checkpoints.jsonl"));
    let sink = Arc::new(MemorySink::new());
    let log = log(sink.clone(), checkpointer.every(1)).await;
    record(&log, 3).await;
    assert!(log.is_healthy());
    log.shutdown().await;
    assert_eq!(sink.records().len(), 3);
}

#[test]
fn the_default_triggers_are_1000_records_and_60_seconds() {
    let checkpointer = Checkpointer::new(CheckpointSigner::generate(), "c.jsonl");
    assert_eq!((checkpointer.every, checkpointer.interval), (1000, Duration::from_secs(60)));
}

/// `with_checkpoints` on a log whose writer already waits for records: the next batch is
/// covered (here by the drain's checkpoint), not only the ones after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpointer_handed_to_a_running_writer_covers_its_next_batch() {
    let dir = ScratchDir::new();
    let log = AuditLog::start(Arc::new(MemorySink::new()), 64, FailurePolicy::FailClosed)
        .await
        .unwrap()
        .with_commit(Commit::Synchronous);
    record(&log, 1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let log = log.with_checkpoints(checkpointer(&dir).every(0).interval(Duration::ZERO));
    record(&log, 1).await;
    log.drain(Duration::from_secs(1)).await.unwrap();
    assert_eq!(seqs(&dir), [2], "the record stored after with_checkpoints is signed at the drain");
}
