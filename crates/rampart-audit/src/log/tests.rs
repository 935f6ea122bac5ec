//! The writer: ordering under concurrency, restart, failing sinks, a full queue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::AtomicU8;

use async_trait::async_trait;
use tokio::{sync::Semaphore, time::Instant};

use super::*;
use crate::{
    AuditRecord, JsonlSink, MemorySink, read_jsonl,
    test_support::{ScratchDir, event},
    verify,
};

/// What [`TestSink`] does with the next appends.
const WORKS: u8 = 0;
const FAILS: u8 = 1;
/// Stores the records, then reports an error (a commit whose acknowledgement was lost).
const STORES_THEN_FAILS: u8 = 2;
/// Another writer appends a record of its own first, once; ours then conflicts.
const INTERLOPER: u8 = 3;
/// Every append conflicts, as if another writer always got there first.
const ALWAYS_CONFLICTS: u8 = 4;

/// A memory sink that fails on demand, and whose appends, or reads of the last record,
/// can be held at a gate.
struct TestSink {
    records: MemorySink,
    mode: AtomicU8,
    gate: Option<Semaphore>,
    head_gate: Option<Semaphore>,
}

impl TestSink {
    fn new() -> Arc<Self> {
        Arc::new(Self { records: MemorySink::new(), mode: AtomicU8::new(WORKS), gate: None, head_gate: None })
    }

    /// Appends wait for a permit of `gate`.
    fn gated() -> Arc<Self> {
        Arc::new(Self {
            records: MemorySink::new(),
            mode: AtomicU8::new(WORKS),
            gate: Some(Semaphore::new(0)),
            head_gate: None,
        })
    }

    /// Holding `records`; reads of the last one wait for a permit of `head_gate` (a
    /// store that takes its time to open).
    async fn slow_to_open(records: &[AuditRecord]) -> Arc<Self> {
        let sink = Self {
            records: MemorySink::new(),
            mode: AtomicU8::new(WORKS),
            gate: None,
            head_gate: Some(Semaphore::new(0)),
        };
        for record in records {
            sink.records.append(&record.clone().into()).await.unwrap();
        }
        Arc::new(sink)
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

#[async_trait]
impl AuditSink for TestSink {
    async fn append(&self, record: &SealedRecord) -> Result<(), SinkError> {
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        match self.mode.load(Ordering::SeqCst) {
            FAILS => Err(SinkError::Unavailable("disk unplugged".into())),
            STORES_THEN_FAILS => {
                self.records.append(record).await?;
                Err(SinkError::Unavailable("commit acknowledgement lost".into()))
            }
            INTERLOPER => {
                self.set(WORKS);
                let (seq, hash) =
                    self.records.last().await?.map_or((0, crate::GENESIS_HASH.to_owned()), |r| (r.seq, r.hash));
                let mut theirs = event(1000 + seq);
                theirs.principal = "local".into();
                self.records.append(&SealedRecord::seal(theirs, seq + 1, hash)).await?;
                Err(SinkError::Conflict { seq: record.seq })
            }
            ALWAYS_CONFLICTS => Err(SinkError::Conflict { seq: record.seq }),
            _ => self.records.append(record).await,
        }
    }

    async fn last(&self) -> Result<Option<AuditRecord>, SinkError> {
        if let Some(gate) = &self.head_gate {
            gate.acquire().await.unwrap().forget();
        }
        self.records.last().await
    }
}

/// A log whose callers wait for their records to be stored (they get seqs back).
async fn synchronous(sink: Arc<dyn AuditSink>, capacity: usize, policy: FailurePolicy) -> AuditLog {
    AuditLog::start(sink, capacity, policy).await.unwrap().with_commit(Commit::Synchronous)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_records_get_contiguous_sequence_numbers() {
    let sink = Arc::new(MemorySink::new());
    let log = Arc::new(synchronous(sink.clone(), 8, FailurePolicy::FailClosed).await);
    let tasks: Vec<_> = (1..=100)
        .map(|n| {
            let log = Arc::clone(&log);
            tokio::spawn(async move { (n, log.record(event(n)).await.unwrap().seq().unwrap()) })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap());
    }
    let records = sink.records();
    for (n, seq) in &seqs {
        // Each caller got the seq of its own record.
        assert_eq!(records[usize::try_from(*seq).unwrap() - 1].event.request_id, Some(format!("req-{n}")));
    }
    let mut seqs: Vec<u64> = seqs.into_iter().map(|(_, seq)| seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
    let summary = verify(records).unwrap();
    assert_eq!(summary.records, 100);
    assert_eq!(summary.last, log.head());
}

#[tokio::test]
async fn a_restart_continues_the_chain() {
    let dir = ScratchDir::new();
    let path = dir.file("audit.jsonl");
    for (run, count) in [(1, 3), (2, 2)] {
        let sink = Arc::new(JsonlSink::open(&path).await.unwrap());
        let log = synchronous(sink, 4, FailurePolicy::FailClosed).await;
        for n in 1..=count {
            log.record(event(n)).await.unwrap();
        }
        assert_eq!(log.head().seq, if run == 1 { 3 } else { 5 });
        log.shutdown().await;
    }
    let summary = verify(read_jsonl(&path).unwrap()).unwrap();
    assert_eq!((summary.records, summary.last.seq), (5, 5));
}

#[tokio::test]
async fn fail_closed_refuses_until_the_sink_recovers() {
    let sink = TestSink::new();
    let log = synchronous(sink.clone(), 4, FailurePolicy::FailClosed).await;
    assert_eq!(log.record(event(1)).await.unwrap().seq(), Some(1));
    assert!(log.is_healthy());

    sink.set(FAILS);
    let error = log.record(event(2)).await.unwrap_err();
    assert!(matches!(&error, AuditError::Sink(cause) if matches!(**cause, SinkError::Unavailable(_))), "{error}");
    assert!(!log.is_healthy());
    assert!(log.record(event(3)).await.is_err());

    sink.set(WORKS);
    assert_eq!(log.record(event(4)).await.unwrap().seq(), Some(2), "failed records take no place in the chain");
    assert!(log.is_healthy());
    let records = sink.records.records();
    assert_eq!(records[1].event.request_id.as_deref(), Some("req-4"));
    assert_eq!(verify(records).unwrap().records, 2);
}

#[tokio::test]
async fn fail_open_goes_on_unwritten() {
    let sink = TestSink::new();
    let log = synchronous(sink.clone(), 4, FailurePolicy::FailOpen).await;
    sink.set(FAILS);
    let receipt = log.record(event(1)).await.unwrap();
    assert!(!receipt.written());
    assert_eq!(receipt.seq(), None);
    assert!(!log.is_healthy());

    sink.set(WORKS);
    let receipt = log.record(event(2)).await.unwrap();
    assert!(receipt.written());
    assert_eq!(receipt.seq(), Some(1));
    assert!(log.is_healthy());
}

#[tokio::test]
async fn after_an_ambiguous_failure_the_chain_continues_from_what_was_stored() {
    let sink = TestSink::new();
    let log = synchronous(sink.clone(), 4, FailurePolicy::FailClosed).await;
    sink.set(STORES_THEN_FAILS);
    assert!(log.record(event(1)).await.is_err());
    sink.set(WORKS);
    assert_eq!(log.record(event(2)).await.unwrap().seq(), Some(2));
    assert_eq!(verify(sink.records.records()).unwrap().records, 2);
}

#[tokio::test]
async fn another_writers_records_are_chained_after_without_an_outage() {
    let sink = TestSink::new();
    let log = synchronous(sink.clone(), 4, FailurePolicy::FailClosed).await;
    assert_eq!(log.record(event(1)).await.unwrap().seq(), Some(1));
    sink.set(INTERLOPER);
    assert_eq!(log.record(event(2)).await.unwrap().seq(), Some(3), "after the other writer's record 2");
    assert!(log.is_healthy(), "a conflict is not an outage: calls go on being admitted");
    let records = sink.records.records();
    assert_eq!(request_ids(&records), ["req-1", "req-1001", "req-2"]);
    assert_eq!(records[1].event.principal, "local");
    assert_eq!(verify(records).unwrap().records, 3, "one unbroken chain");
}

#[tokio::test]
async fn endless_conflicts_end_in_an_error() {
    let sink = TestSink::new();
    let log = synchronous(sink.clone(), 4, FailurePolicy::FailClosed).await;
    sink.set(ALWAYS_CONFLICTS);
    let error = log.record(event(1)).await.unwrap_err();
    assert!(error.to_string().contains("another writer"), "{error}");
    assert!(!log.is_healthy());
    assert!(sink.records.records().is_empty());
}

#[tokio::test]
async fn a_full_queue_times_out() {
    let sink = TestSink::gated();
    let log = Arc::new(
        synchronous(sink.clone(), 1, FailurePolicy::FailClosed).await.with_queue_timeout(Duration::from_millis(100)),
    );
    // The writer takes the first event and waits at the gate; the second fills the queue.
    let first = tokio::spawn({
        let log = Arc::clone(&log);
        async move { log.record(event(1)).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = tokio::spawn({
        let log = Arc::clone(&log);
        async move { log.record(event(2)).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(log.queue_depth(), 1);

    let started = tokio::time::Instant::now();
    let error = log.record(event(3)).await.unwrap_err();
    assert!(matches!(error, AuditError::QueueFull { waited_ms: 100 }), "{error}");
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(log.is_healthy(), "a full queue is not a sink failure");

    sink.gate.as_ref().unwrap().add_permits(2);
    assert_eq!(first.await.unwrap().unwrap().seq(), Some(1));
    assert_eq!(second.await.unwrap().unwrap().seq(), Some(2));
    assert_eq!(log.queue_depth(), 0);
}

#[tokio::test]
async fn start_refuses_bad_settings_and_a_tampered_tail() {
    let sink = Arc::new(MemorySink::new());
    assert!(matches!(AuditLog::start(sink.clone(), 0, FailurePolicy::FailClosed).await, Err(AuditError::ZeroCapacity)));

    let log = AuditLog::start(sink.clone(), 4, FailurePolicy::FailClosed).await.unwrap();
    log.record(event(1)).await.unwrap();
    log.shutdown().await;
    let mut tampered = sink.records();
    tampered[0].event.principal = "token:admin".into();
    let tampered_sink = Arc::new(MemorySink::new());
    tampered_sink.append(&tampered[0].clone().into()).await.unwrap();
    match AuditLog::start(tampered_sink, 4, FailurePolicy::FailClosed).await {
        Err(AuditError::Sink(cause)) => assert!(matches!(*cause, SinkError::TamperedLast { seq: 1 })),
        other => panic!("expected TamperedLast, got {other:?}"),
    }
}

/// Two records stored by an earlier run, the second edited when `tampered`.
async fn earlier_run(tampered: bool) -> Vec<AuditRecord> {
    let sink = Arc::new(MemorySink::new());
    let log = synchronous(sink.clone(), 4, FailurePolicy::FailClosed).await;
    log.record(event(1)).await.unwrap();
    log.record(event(2)).await.unwrap();
    log.shutdown().await;
    let mut records = sink.records();
    if tampered {
        records[1].event.principal = "token:admin".into();
    }
    records
}

#[tokio::test]
async fn spawn_returns_before_the_head_is_read_and_chains_what_was_queued_after_it() {
    let sink = TestSink::slow_to_open(&earlier_run(false).await).await;
    let log = AuditLog::spawn(sink.clone(), 8, FailurePolicy::FailClosed).unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(50), log.ready()).await.is_err(),
        "not ready while the head is unread"
    );
    assert!(!log.is_healthy(), "not healthy before the head is read");
    for n in 3..=5 {
        assert!(log.record(event(n)).await.unwrap().queued(), "recording does not wait for the head");
    }
    assert_eq!(sink.records.records().len(), 2, "nothing is appended before the head is read");

    sink.head_gate.as_ref().unwrap().add_permits(100);
    log.ready().await.unwrap();
    assert_eq!(log.drain(PATIENCE).await.unwrap(), 0);
    let records = sink.records.records();
    assert_eq!(request_ids(&records), ["req-1", "req-2", "req-3", "req-4", "req-5"]);
    let summary = verify(records).unwrap();
    assert_eq!((summary.records, summary.last.seq), (5, 5), "chained after the stored head");
    assert_eq!(log.head(), summary.last);
    assert!(log.is_healthy());
}

#[tokio::test]
async fn a_tampered_tail_found_after_spawn_is_refused_and_nothing_is_chained_onto_it() {
    for policy in [FailurePolicy::FailClosed, FailurePolicy::FailOpen] {
        let tampered = earlier_run(true).await;
        let sink = TestSink::slow_to_open(&tampered).await;
        let log = AuditLog::spawn(sink.clone(), 8, policy).unwrap();
        log.record(event(3)).await.unwrap();
        sink.head_gate.as_ref().unwrap().add_permits(100);
        match log.ready().await {
            Err(AuditError::Sink(cause)) => assert!(matches!(*cause, SinkError::TamperedLast { seq: 2 }), "{policy:?}"),
            other => panic!("{policy:?}: expected TamperedLast, got {other:?}"),
        }
        assert!(log.ready().await.is_err(), "{policy:?}: stays refused");
        assert!(!log.is_healthy(), "{policy:?}");
        assert_eq!(log.drain(Duration::ZERO).await.unwrap(), 1, "{policy:?}: the queued record is given up");
        assert_eq!(sink.records.records(), tampered, "{policy:?}: nothing chained onto the edited record");
    }
}

/// How long a test waits for something the writer does in the background.
const PATIENCE: Duration = Duration::from_secs(5);

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {PATIENCE:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn request_ids(records: &[AuditRecord]) -> Vec<String> {
    records.iter().map(|r| r.event.request_id.clone().unwrap()).collect()
}

#[tokio::test]
async fn asynchronous_records_return_once_queued_and_are_stored_in_order() {
    let sink = TestSink::gated();
    let log = AuditLog::start(sink.clone(), 16, FailurePolicy::FailClosed).await.unwrap();
    assert_eq!(log.commit(), Commit::Asynchronous, "the default");
    for n in 1..=5 {
        // The sink stores nothing until the gate opens: a synchronous record would hang.
        let receipt = tokio::time::timeout(PATIENCE, log.record(event(n))).await.expect("returns once queued").unwrap();
        assert!(receipt.queued() && !receipt.written() && receipt.seq().is_none());
    }
    assert!(sink.records.records().is_empty());
    sink.gate.as_ref().unwrap().add_permits(5);
    assert_eq!(log.drain(PATIENCE).await.unwrap(), 0, "nothing given up");
    let records = sink.records.records();
    assert_eq!(request_ids(&records), ["req-1", "req-2", "req-3", "req-4", "req-5"]);
    assert_eq!(verify(records).unwrap().last, log.head());
}

#[tokio::test]
async fn asynchronous_fail_closed_holds_records_through_an_outage_and_loses_none() {
    let sink = TestSink::new();
    let log = AuditLog::start(sink.clone(), 16, FailurePolicy::FailClosed).await.unwrap();
    log.record(event(1)).await.unwrap();
    log.drain(PATIENCE).await.unwrap();

    sink.set(FAILS);
    // Calls already admitted finish while the sink is down; their records are queued.
    for n in 2..=4 {
        assert!(log.record(event(n)).await.unwrap().queued());
    }
    eventually("the log reports the outage", || !log.is_healthy()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.records.records().len(), 1, "nothing stored while the sink is down");
    assert!(!log.is_healthy(), "still unhealthy while retrying: new calls stay refused");

    sink.set(WORKS);
    assert_eq!(log.drain(PATIENCE).await.unwrap(), 0);
    assert!(log.is_healthy());
    let records = sink.records.records();
    assert_eq!(request_ids(&records), ["req-1", "req-2", "req-3", "req-4"], "held records, in order");
    assert_eq!(verify(records).unwrap().records, 4);
}

#[tokio::test]
async fn a_batch_stored_despite_a_reported_failure_is_not_chained_twice() {
    let sink = TestSink::new();
    let log = AuditLog::start(sink.clone(), 16, FailurePolicy::FailClosed).await.unwrap();
    sink.set(STORES_THEN_FAILS);
    log.record(event(1)).await.unwrap();
    eventually("the log reports the failure", || !log.is_healthy()).await;
    sink.set(WORKS);
    log.record(event(2)).await.unwrap();
    assert_eq!(log.drain(PATIENCE).await.unwrap(), 0);
    let records = sink.records.records();
    assert_eq!(request_ids(&records), ["req-1", "req-2"], "req-1 once");
    assert_eq!(verify(records).unwrap().records, 2);
}

#[tokio::test]
async fn drain_gives_up_after_its_grace_and_says_how_many_records_were_lost() {
    let sink = TestSink::new();
    let log = AuditLog::start(sink.clone(), 16, FailurePolicy::FailClosed).await.unwrap();
    sink.set(FAILS);
    for n in 1..=3 {
        log.record(event(n)).await.unwrap();
    }
    let started = Instant::now();
    assert_eq!(log.drain(Duration::from_millis(300)).await.unwrap(), 3);
    assert!(started.elapsed() >= Duration::from_millis(300), "retried for the whole grace period");
    assert!(sink.records.records().is_empty());

    // The log goes on: once the sink is back, new records are stored.
    sink.set(WORKS);
    log.record(event(4)).await.unwrap();
    assert_eq!(log.drain(PATIENCE).await.unwrap(), 0);
    assert_eq!(request_ids(&sink.records.records()), ["req-4"]);
}

#[tokio::test]
async fn asynchronous_fail_open_drops_what_the_sink_refuses() {
    let sink = TestSink::new();
    let log = AuditLog::start(sink.clone(), 16, FailurePolicy::FailOpen).await.unwrap();
    sink.set(FAILS);
    log.record(event(1)).await.unwrap();
    assert_eq!(log.drain(PATIENCE).await.unwrap(), 1, "dropped at once, not held");
    sink.set(WORKS);
    log.record(event(2)).await.unwrap();
    assert_eq!(log.drain(PATIENCE).await.unwrap(), 0);
    assert_eq!(request_ids(&sink.records.records()), ["req-2"]);
}

#[tokio::test]
async fn shutdown_stores_what_is_queued() {
    let dir = ScratchDir::new();
    let path = dir.file("audit.jsonl");
    let sink = Arc::new(JsonlSink::open(&path).await.unwrap());
    let log = AuditLog::start(sink, 64, FailurePolicy::FailClosed).await.unwrap();
    for n in 1..=50 {
        log.record(event(n)).await.unwrap();
    }
    log.shutdown().await;
    let summary = verify(read_jsonl(&path).unwrap()).unwrap();
    assert_eq!(summary.records, 50);
}

/// The group-commit pause follows a partial batch only: after a full one more records are
/// waiting, and pausing would cap the log at MAX_BATCH records per pause (512 per 25 ms,
/// about 20k calls/s, whatever the machine). Paused clock: time moves only when every task
/// waits on a timer, so the elapsed time counts the pauses exactly.
#[tokio::test(start_paused = true)]
async fn full_batches_follow_each_other_without_the_group_commit_pause() {
    let sink = Arc::new(MemorySink::new());
    let log = AuditLog::start(sink.clone(), 4 * MAX_BATCH, FailurePolicy::FailClosed).await.unwrap();
    // On this single-threaded runtime the writer runs only once this task waits: three
    // full batches are queued before it takes the first.
    for n in 0..3 * MAX_BATCH {
        log.record(event(n as u64)).await.unwrap();
    }
    let start = Instant::now();
    assert_eq!(log.drain(Duration::from_secs(5)).await.unwrap(), 0);
    assert!(start.elapsed() < GROUP_COMMIT_DELAY, "paused for {:?} between full batches", start.elapsed());
    assert_eq!(sink.records().len(), 3 * MAX_BATCH);

    // A partial batch is still followed by the pause: records arriving meanwhile wait for
    // it and are stored together.
    log.record(event(0)).await.unwrap();
    tokio::task::yield_now().await;
    let start = Instant::now();
    log.record(event(1)).await.unwrap();
    assert_eq!(log.drain(Duration::from_secs(5)).await.unwrap(), 0);
    assert!(start.elapsed() >= GROUP_COMMIT_DELAY, "no pause after a partial batch: {:?}", start.elapsed());
    log.shutdown().await;
}
