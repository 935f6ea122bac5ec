//! The JSONL file: append, reopen, torn tails, malformed lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;
use crate::{
    test_support::{ScratchDir, chain, event, sealed},
    verify,
};
use std::sync::Arc;

async fn write_chain(path: &Path, records: &[AuditRecord]) -> JsonlSink {
    let sink = JsonlSink::open(path).await.unwrap();
    for record in records {
        sink.append(&record.clone().into()).await.unwrap();
    }
    sink
}

#[tokio::test]
async fn appended_records_read_back_and_verify() {
    let dir = ScratchDir::new();
    let path = dir.file("audit.jsonl");
    let records = chain(5);
    let sink = write_chain(&path, &records[..2]).await;
    sink.append_batch(&sealed(&records[2..])).await.unwrap();
    assert_eq!(read_jsonl(&path).unwrap(), records);
    assert_eq!(verify(read_jsonl(&path).unwrap()).unwrap().records, 5);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 5);
    assert!(text.ends_with('\n'));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[tokio::test]
async fn reopening_finds_the_last_record() {
    let dir = ScratchDir::new();
    let path = dir.file("audit.jsonl");
    assert_eq!(JsonlSink::open(&path).await.unwrap().last().await.unwrap(), None);
    let records = chain(3);
    drop(write_chain(&path, &records).await);
    let sink = JsonlSink::open(&path).await.unwrap();
    assert_eq!(sink.last().await.unwrap().as_ref(), records.last());
    assert!(sink.torn_tail().is_none());
}

#[tokio::test]
async fn the_last_record_is_found_behind_long_lines() {
    let dir = ScratchDir::new();
    let path = dir.file("audit.jsonl");
    let mut records: Vec<AuditRecord> = Vec::new();
    for seq in 1..=3 {
        let mut event = event(seq);
        event.arguments = json!({"blob": "x".repeat(100_000)});
        let prev_hash = records.last().map_or(crate::GENESIS_HASH.to_string(), |last| last.hash.clone());
        records.push(AuditRecord::seal(event, seq, prev_hash));
    }
    drop(write_chain(&path, &records).await);
    let sink = JsonlSink::open(&path).await.unwrap();
    assert_eq!(sink.last().await.unwrap().as_ref(), records.last());
}

#[tokio::test]
async fn a_torn_tail_is_moved_aside_and_never_chained_onto() {
    let dir = ScratchDir::new();
    let path = dir.file("audit.jsonl");
    let records = chain(4);
    drop(write_chain(&path, &records[..3]).await);
    let complete_len = std::fs::metadata(&path).unwrap().len();
    let partial = &records[3].json_line()[..40];
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(partial.as_bytes()).unwrap();
    assert!(matches!(read_jsonl(&path), Err(ReadError::TornTail { line: 4, .. })));

    let sink = JsonlSink::open(&path).await.unwrap();
    let torn = sink.torn_tail().unwrap();
    assert_eq!((torn.offset, torn.bytes), (complete_len, 40));
    assert_eq!(std::fs::read_to_string(&torn.saved_to).unwrap(), format!("{partial}\n"));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), complete_len);
    assert_eq!(sink.last().await.unwrap().as_ref(), Some(&records[2]));
    sink.append(&records[3].clone().into()).await.unwrap();
    assert_eq!(verify(read_jsonl(&path).unwrap()).unwrap().records, 4);
}

#[tokio::test]
async fn a_file_holding_only_a_partial_line_becomes_empty() {
    let dir = ScratchDir::new();
    let path = dir.file("audit.jsonl");
    std::fs::write(&path, r#"{"seq":1,"ti"#).unwrap();
    let sink = JsonlSink::open(&path).await.unwrap();
    assert_eq!(sink.torn_tail().map(|torn| (torn.offset, torn.bytes)), Some((0, 12)));
    assert_eq!(sink.last().await.unwrap(), None);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

#[tokio::test]
async fn a_malformed_last_record_refuses_to_open() {
    let dir = ScratchDir::new();
    let path = dir.file("audit.jsonl");
    drop(write_chain(&path, &chain(2)).await);
    let offset = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"seq\": 3}\n").unwrap();
    match JsonlSink::open(&path).await {
        Err(SinkError::Corrupt { offset: at, .. }) => assert_eq!(at, offset),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn a_record_that_does_not_continue_the_file_is_refused() {
    let dir = ScratchDir::new();
    let records = chain(3);
    let sink = write_chain(&dir.file("audit.jsonl"), &records[..1]).await;
    let error = sink.append(&records[2].clone().into()).await.unwrap_err();
    assert!(matches!(error, SinkError::OutOfOrder { seq: 3, last_seq: 1 }), "{error}");
    let mut forged = records[1].clone();
    forged.prev_hash = "1".repeat(64);
    assert!(matches!(sink.append(&forged.into()).await, Err(SinkError::OutOfOrder { seq: 2, .. })));
    sink.append(&records[1].clone().into()).await.unwrap();
}

#[tokio::test]
async fn bytes_left_by_a_failed_write_are_cut_before_the_next() {
    let dir = ScratchDir::new();
    let path = dir.file("audit.jsonl");
    let records = chain(2);
    let sink = write_chain(&path, &records[..1]).await;
    {
        let mut state = sink.state.lock().unwrap();
        state.file.write_all(b"{\"half a rec").unwrap();
        state.dirty = true;
    }
    sink.append(&records[1].clone().into()).await.unwrap();
    assert_eq!(read_jsonl(&path).unwrap(), records);
}

#[test]
fn read_errors_name_the_line() {
    let dir = ScratchDir::new();
    let path = dir.file("audit.jsonl");
    let lines: Vec<String> = chain(3).iter().map(AuditRecord::json_line).collect();
    std::fs::write(&path, format!("{}\n{}\nnot json\n{}\n", lines[0], lines[1], lines[2])).unwrap();
    match read_jsonl(&path) {
        Err(error @ ReadError::Malformed { line: 3, .. }) => assert!(error.to_string().contains("line 3")),
        other => panic!("expected line 3 malformed, got {other:?}"),
    }
    let records: Vec<_> = JsonlRecords::open(&path).unwrap().collect();
    assert_eq!(records.len(), 3, "stops after the first error");
    assert!(matches!(read_jsonl(dir.file("absent.jsonl")), Err(ReadError::Io { .. })));
}

/// Two writers on one file (a server and `rampart token …`): each notices the other's
/// records under the file lock and chains after them, so the file stays one chain.
#[tokio::test]
async fn two_writers_on_one_file_take_turns_in_one_chain() {
    use crate::{AuditLog, Commit, FailurePolicy};
    let dir = ScratchDir::new();
    let path = dir.file("audit.jsonl");
    let open = || async {
        let sink = Arc::new(JsonlSink::open(&path).await.unwrap());
        AuditLog::start(sink, 8, FailurePolicy::FailClosed).await.unwrap().with_commit(Commit::Synchronous)
    };
    let (server, cli) = (open().await, open().await);
    let mut seqs = Vec::new();
    for n in 1..=6 {
        let log = if n % 3 == 0 { &cli } else { &server };
        seqs.push(log.record(event(n)).await.unwrap().seq().unwrap());
    }
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    assert!(server.is_healthy() && cli.is_healthy(), "taking turns is not an outage");
    let records = read_jsonl(&path).unwrap();
    let ids: Vec<_> = records.iter().map(|r| r.event.request_id.clone().unwrap()).collect();
    assert_eq!(ids, ["req-1", "req-2", "req-3", "req-4", "req-5", "req-6"]);
    assert_eq!(verify(records).unwrap().records, 6);
}
