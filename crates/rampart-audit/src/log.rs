//! [`AuditLog`]: the one writer. Callers enqueue events on a bounded queue; one task
//! seals them into the chain in arrival order and appends them to the sink in batches.
//! Under [`Commit::Synchronous`] each caller waits for its record to be stored; under
//! [`Commit::Asynchronous`] (the default) it goes on once the record is queued, and the
//! writer holds records through a sink outage instead of dropping them. With a
//! [`Checkpointer`] the writer also signs checkpoints of the stored head.

use std::{
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{
        Notify,
        mpsc::{
            self,
            error::{SendTimeoutError, TrySendError},
        },
        oneshot,
    },
    task::JoinHandle,
    time::Instant,
};

use crate::{AuditEvent, AuditSink, ChainHead, Checkpointer, SealedRecord, SinkError, checkpointer::Checkpoints};

/// Most records the writer seals and appends in one sink call (one flush or transaction).
/// A full batch is followed by the next at once, without [`GROUP_COMMIT_DELAY`].
const MAX_BATCH: usize = 512;
/// First wait before the writer retries records it holds after a sink failure; doubled
/// after each failure up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(50);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Times in a row the writer re-reads the head and retries a batch another writer got
/// ahead of ([`SinkError::Conflict`]) before treating it as a failure.
const MAX_CONFLICT_RETRIES: u32 = 16;
/// After storing a batch nobody waited for, the writer lets records gather this long
/// before taking the next batch (PostgreSQL's `commit_delay`): under load, one sink
/// transaction and one wake-up of the writer serve many calls instead of one each. A
/// record that arrives while the writer is idle is still taken at once. This bounds what a
/// crash of the process can lose under asynchronous commit to about this much traffic.
/// 25 ms rather than 10: a record cost 1.4 µs less of CPU (bench `audit_cost`, batches of
/// ~375 instead of ~150 at 15k calls/s); PostgreSQL's own asynchronous commit may lose
/// up to three times its `wal_writer_delay` (200 ms).
const GROUP_COMMIT_DELAY: Duration = Duration::from_millis(25);

/// Records sealed between two yields to the runtime (~1.4 µs each, by `bench/profile.py`).
const SEAL_SLICE: usize = 32;

/// What [`AuditLog::record`] does when a record cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Nothing new runs while the log cannot be written: [`AuditLog::is_healthy`] turns
    /// false at the first failed append and the pipeline refuses calls until it is true
    /// again. Under [`Commit::Synchronous`], `record` returns the error and the caller
    /// withholds the result; under [`Commit::Asynchronous`] the writer holds the records
    /// it could not store and retries them (in order, the chain unbroken) until the sink
    /// is back. The default.
    #[default]
    FailClosed,
    /// `record` logs the error (tracing, `error` level) and the operation goes on
    /// unaudited; records that could not be stored are dropped (and logged as lost).
    FailOpen,
}

/// When [`AuditLog::record`] returns: the trade-off between a call's latency and how
/// many records a crash of the process can lose. The terms follow PostgreSQL's
/// `synchronous_commit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Commit {
    /// Once the event is queued (the default). The writer stores it at once when idle,
    /// within about 25 ms under load (records gather for one commit), and a caller never
    /// waits for the disk or the database. A crash of the process (`kill -9`, power loss) loses the records still
    /// queued; a graceful shutdown ([`AuditLog::drain`]) stores them. The tool's effect
    /// has happened before its record is written under either mode, since the record
    /// holds the outcome.
    #[default]
    Asynchronous,
    /// Once the record is stored (committed, or flushed to the file): a result is never
    /// released before its record is durable, at the cost of one sink round trip per
    /// batch on every call's latency.
    Synchronous,
}

/// What became of an event handed to [`AuditLog::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditReceipt {
    state: ReceiptState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReceiptState {
    Stored(u64),
    Queued,
    NotWritten,
}

impl AuditReceipt {
    /// Whether the record is durably stored (only known under [`Commit::Synchronous`]).
    pub fn written(&self) -> bool {
        matches!(self.state, ReceiptState::Stored(_))
    }

    /// Whether the event is queued for the writer ([`Commit::Asynchronous`]).
    pub fn queued(&self) -> bool {
        matches!(self.state, ReceiptState::Queued)
    }

    /// The record's sequence number, when it is known to be stored.
    pub fn seq(&self) -> Option<u64> {
        match self.state {
            ReceiptState::Stored(seq) => Some(seq),
            ReceiptState::Queued | ReceiptState::NotWritten => None,
        }
    }
}

/// Why an event was not recorded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// The queue stayed full for the whole queue timeout: the sink is slower than the
    /// traffic, or stalled.
    #[error("audit queue full: no room within {waited_ms} ms")]
    QueueFull {
        /// How long the caller waited for room, in milliseconds.
        waited_ms: u64,
    },
    /// The sink failed; the record was not chained (the next one links to the last
    /// record stored).
    #[error("audit record not written: {0}")]
    Sink(#[source] Arc<SinkError>),
    /// The writer task is gone (shut down, or it panicked).
    #[error("the audit writer has stopped")]
    WriterStopped,
    /// [`AuditLog::start`] was given a queue capacity of 0.
    #[error("the audit queue capacity must be at least 1")]
    ZeroCapacity,
}

type Reply = oneshot::Sender<Result<u64, Arc<SinkError>>>;

/// What the writer receives.
// Nearly every job is a record: boxing the event to shrink `Drain` would cost an
// allocation per call.
#[allow(clippy::large_enum_variant)]
enum Job {
    /// An event, and where to confirm it (`None`: asynchronous, nobody waits).
    Record { event: AuditEvent, reply: Option<Reply> },
    /// [`AuditLog::drain`]: answer once everything queued before has been stored or given
    /// up, with the number of records given up.
    Drain(oneshot::Sender<usize>),
}

/// State the writer shares with [`AuditLog`].
struct Shared {
    /// Set once the writer has read the chain's head at start, or has ended without
    /// reading it ([`AuditLog::ready`]).
    started: OnceLock<Result<(), AuditError>>,
    /// Wakes [`AuditLog::ready`]'s waiters once `started` is set.
    start: Notify,
    healthy: AtomicBool,
    head: Mutex<ChainHead>,
    /// Set by [`AuditLog::drain`]: past this instant the writer stops retrying records
    /// it cannot store and writes them to the server log instead.
    give_up_at: Mutex<Option<Instant>>,
    /// Set by [`AuditLog::with_checkpoints`], taken by the writer before its next batch.
    checkpointer: Mutex<Option<Checkpointer>>,
}

impl Shared {
    fn giving_up(&self) -> bool {
        self.give_up_at.lock().unwrap_or_else(PoisonError::into_inner).is_some_and(|at| Instant::now() >= at)
    }
}

/// The audit log: a bounded queue in front of one writer task that owns the chain.
///
/// Share it (`Arc<AuditLog>`) between every part of the call pipeline. Records get
/// sequence numbers in the order they reach the queue. Once enqueued, an event is
/// written even if the caller stops waiting (its request was cancelled).
pub struct AuditLog {
    sender: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    policy: FailurePolicy,
    commit: Commit,
    queue_timeout: Duration,
    writer: JoinHandle<()>,
    sink: Arc<dyn AuditSink>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("policy", &self.policy)
            .field("commit", &self.commit)
            .field("queue_timeout", &self.queue_timeout)
            .field("queue_depth", &self.queue_depth())
            .field("healthy", &self.is_healthy())
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// How long [`Self::record`] waits for room in a full queue unless
    /// [`Self::with_queue_timeout`] says otherwise: 2 s.
    pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(2);

    /// How long [`Self::shutdown`] keeps retrying records the sink refuses: 5 s.
    pub const DEFAULT_DRAIN_GRACE: Duration = Duration::from_secs(5);

    /// Starts the writer and waits until it has read the sink's last record
    /// ([`Self::spawn`], then [`Self::ready`]).
    ///
    /// # Errors
    /// [`AuditError::ZeroCapacity`]; [`AuditError::Sink`] when the last record does not
    /// match its own hash ([`SinkError::TamperedLast`]): nothing is chained onto a record
    /// that was edited.
    pub async fn start(sink: Arc<dyn AuditSink>, capacity: usize, policy: FailurePolicy) -> Result<Self, AuditError> {
        let log = Self::spawn(sink, capacity, policy)?;
        log.ready().await?;
        Ok(log)
    }

    /// Starts the writer task (on the current tokio runtime) with a queue of `capacity`
    /// events, committing [`Commit::Asynchronous`]ly unless [`Self::with_commit`] says
    /// otherwise, and returns at once: the writer first reads the sink's last record (which
    /// opens, and may migrate, a store), then takes the queue in order. Events recorded
    /// meanwhile wait in the queue; [`Self::ready`] says when the head has been read, and
    /// whether the chain may be continued. A server answers its client's first message
    /// while this happens (stdio cold start) and runs no call before it has.
    ///
    /// A sink that cannot be reached (a database that is down) does not stop the start:
    /// the log starts unhealthy ([`Self::is_healthy`] is false) and [`Self::probe`] or
    /// the next append reconnects.
    ///
    /// # Errors
    /// [`AuditError::ZeroCapacity`].
    pub fn spawn(sink: Arc<dyn AuditSink>, capacity: usize, policy: FailurePolicy) -> Result<Self, AuditError> {
        if capacity == 0 {
            return Err(AuditError::ZeroCapacity);
        }
        let shared = Arc::new(Shared {
            started: OnceLock::new(),
            start: Notify::new(),
            healthy: AtomicBool::new(false),
            head: Mutex::new(ChainHead::genesis()),
            give_up_at: Mutex::new(None),
            checkpointer: Mutex::new(None),
        });
        let (sender, receiver) = mpsc::channel(capacity);
        let writer = Writer {
            sink: Arc::clone(&sink),
            head: None,
            shared: Arc::clone(&shared),
            policy,
            given_up: 0,
            checkpoints: None,
        };
        let writer = tokio::spawn(writer.run(receiver));
        Ok(Self {
            sender,
            shared,
            policy,
            commit: Commit::default(),
            queue_timeout: Self::DEFAULT_QUEUE_TIMEOUT,
            writer,
            sink,
        })
    }

    /// Waits until the writer has read the chain's head at start (at once after that: one
    /// atomic load). A sink that could not be reached counts as read: the log is then
    /// unhealthy, see [`Self::is_healthy`].
    ///
    /// # Errors
    /// [`AuditError::Sink`] with [`SinkError::TamperedLast`] when the last record does not
    /// match its own hash: nothing may be chained onto it, so nothing should run;
    /// [`AuditError::WriterStopped`] if the writer ended before reading it.
    pub async fn ready(&self) -> Result<(), AuditError> {
        if let Some(result) = self.shared.started.get() {
            return result.clone();
        }
        loop {
            // Registered before the check, so that a head read in between still wakes it.
            let started = self.shared.start.notified();
            if let Some(result) = self.shared.started.get() {
                return result.clone();
            }
            started.await;
        }
    }

    /// Checks that the sink answers again (reads its last record); on success the log is
    /// healthy again and the next append continues the chain from the stored head.
    /// Returns [`Self::is_healthy`]. A tampered last record keeps it unhealthy.
    pub async fn probe(&self) -> bool {
        if self.is_healthy() {
            return true;
        }
        match read_head(self.sink.as_ref()).await {
            Ok(_) => {
                self.shared.healthy.store(true, Ordering::Release);
                tracing::info!("audit sink reachable again");
            }
            Err(error) => tracing::debug!(%error, "audit sink still unavailable"),
        }
        self.is_healthy()
    }

    /// The same log, waiting at most `timeout` for room in a full queue.
    pub fn with_queue_timeout(mut self, timeout: Duration) -> Self {
        self.queue_timeout = timeout;
        self
    }

    /// The same log, with [`Self::record`] returning as `commit` says.
    pub fn with_commit(mut self, commit: Commit) -> Self {
        self.commit = commit;
        self
    }

    /// The same log, its writer signing checkpoints of the stored head as `checkpointer`
    /// says (see [`Checkpointer`]), from the head stored when the writer takes it on (before
    /// its next batch) on. Replaces an earlier checkpointer.
    pub fn with_checkpoints(self, checkpointer: Checkpointer) -> Self {
        *self.shared.checkpointer.lock().unwrap_or_else(PoisonError::into_inner) = Some(checkpointer);
        self
    }

    /// Appends `event` to the log: returns once it is queued ([`Commit::Asynchronous`],
    /// the receipt says `queued()`) or once it is stored ([`Commit::Synchronous`], the
    /// receipt has its seq).
    ///
    /// # Errors
    /// Only under [`FailurePolicy::FailClosed`] (under `FailOpen` the error is logged and
    /// the receipt says `written() == false`): [`AuditError::QueueFull`] after waiting
    /// the queue timeout for room, [`AuditError::WriterStopped`], and, synchronous only,
    /// [`AuditError::Sink`] when the sink failed.
    pub async fn record(&self, event: AuditEvent) -> Result<AuditReceipt, AuditError> {
        let result = match self.commit {
            Commit::Synchronous => self.write(event).await.map(ReceiptState::Stored),
            Commit::Asynchronous => self.enqueue(event, None).await.map(|()| ReceiptState::Queued),
        };
        match result {
            Ok(state) => Ok(AuditReceipt { state }),
            Err(error) => match self.policy {
                FailurePolicy::FailClosed => Err(error),
                FailurePolicy::FailOpen => {
                    tracing::error!(%error, "audit record lost; the request goes on (audit failure policy: fail open)");
                    Ok(AuditReceipt { state: ReceiptState::NotWritten })
                }
            },
        }
    }

    async fn enqueue(&self, event: AuditEvent, reply: Option<Reply>) -> Result<(), AuditError> {
        self.send(Job::Record { event, reply }).await
    }

    async fn send(&self, job: Job) -> Result<(), AuditError> {
        // The common case first: a queue with room takes the job without arming a timer
        // (a timer per call showed up in profiles).
        let job = match self.sender.try_send(job) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(_)) => return Err(AuditError::WriterStopped),
            Err(TrySendError::Full(job)) => job,
        };
        match self.sender.send_timeout(job, self.queue_timeout).await {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Timeout(_)) => {
                let waited_ms = u64::try_from(self.queue_timeout.as_millis()).unwrap_or(u64::MAX);
                Err(AuditError::QueueFull { waited_ms })
            }
            Err(SendTimeoutError::Closed(_)) => Err(AuditError::WriterStopped),
        }
    }

    async fn write(&self, event: AuditEvent) -> Result<u64, AuditError> {
        let (reply, confirmation) = oneshot::channel();
        self.enqueue(event, Some(reply)).await?;
        match confirmation.await {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(error)) => Err(AuditError::Sink(error)),
            Err(_) => Err(AuditError::WriterStopped),
        }
    }

    /// Waits until every event queued before this call is stored. While the sink refuses
    /// them the writer keeps retrying until `grace` has passed; then it gives up on the
    /// records it holds, writes each to the server log (tracing, `error` level, the
    /// redacted event as JSON: the last place it can go), and goes on. Returns how many
    /// records were given up (0: all stored). Meant for a graceful shutdown; new events
    /// are still accepted.
    ///
    /// # Errors
    /// [`AuditError::WriterStopped`]; [`AuditError::QueueFull`] if the queue has no room
    /// for the drain request within the queue timeout.
    pub async fn drain(&self, grace: Duration) -> Result<usize, AuditError> {
        *self.shared.give_up_at.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + grace);
        let (reply, done) = oneshot::channel();
        let result = match self.send(Job::Drain(reply)).await {
            Ok(()) => done.await.map_err(|_| AuditError::WriterStopped),
            Err(error) => Err(error),
        };
        *self.shared.give_up_at.lock().unwrap_or_else(PoisonError::into_inner) = None;
        result
    }

    /// Whether the last append succeeded (and the writer is running). False until the
    /// head is read at start ([`Self::ready`]), and from a sink error until an append (or
    /// [`Self::probe`]) succeeds again: check it before running an operation to refuse it
    /// up front under fail-closed. A full queue does not change it.
    pub fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Acquire) && !self.sender.is_closed()
    }

    /// Events waiting in the queue (including ones being enqueued), for a metric.
    pub fn queue_depth(&self) -> usize {
        self.sender.max_capacity().saturating_sub(self.sender.capacity())
    }

    /// The last record durably stored (seq 0 and the genesis hash when none, or before
    /// [`Self::ready`]): an anchor to keep outside the log (see
    /// [`Verifier::with_anchor`](crate::Verifier::with_anchor)).
    pub fn head(&self) -> ChainHead {
        self.shared.head.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The failure policy.
    pub fn policy(&self) -> FailurePolicy {
        self.policy
    }

    /// When [`Self::record`] returns.
    pub fn commit(&self) -> Commit {
        self.commit
    }

    /// Stores what is queued ([`Self::drain`] with [`Self::DEFAULT_DRAIN_GRACE`]), stops
    /// taking events and waits for the writer.
    pub async fn shutdown(self) {
        if let Err(error) = self.drain(Self::DEFAULT_DRAIN_GRACE).await {
            tracing::warn!(%error, "audit log not drained");
        }
        drop(self.sender);
        // A writer that panicked has nothing left to finish.
        let _ = self.writer.await;
    }
}

/// The chain's head in `sink`: its last record, which must match its own hash.
async fn read_head(sink: &dyn AuditSink) -> Result<ChainHead, SinkError> {
    match sink.last().await? {
        None => Ok(ChainHead::genesis()),
        Some(last) if last.is_intact() => Ok(ChainHead::of(&last)),
        Some(last) => Err(SinkError::TamperedLast { seq: last.seq }),
    }
}

/// The writer task's state: the sink, and the head of the chain as stored.
struct Writer {
    sink: Arc<dyn AuditSink>,
    /// `None` after a failed append: re-read from the sink before the next one, since a
    /// failed batch may have been stored in part.
    head: Option<ChainHead>,
    shared: Arc<Shared>,
    policy: FailurePolicy,
    /// Records given up since the last drain answered.
    given_up: usize,
    /// Signed checkpoints, once [`AuditLog::with_checkpoints`] handed a checkpointer over.
    checkpoints: Option<Checkpoints>,
}

/// Tells [`AuditLog::ready`]'s waiters when the writer ends (returns, or panics) before
/// reading the head.
impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.shared.started.set(Err(AuditError::WriterStopped));
        self.shared.start.notify_waiters();
    }
}

impl Writer {
    async fn run(mut self, mut receiver: mpsc::Receiver<Job>) {
        self.read_head_at_start().await;
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        loop {
            self.take_checkpointer();
            // A deadline only with a confirmed head to sign: after a failed append there is
            // none until the next append, and a deadline in the past would spin.
            let deadline = self.checkpoints.as_ref().and_then(Checkpoints::deadline).filter(|_| self.head.is_some());
            let taken = match deadline {
                None => receiver.recv_many(&mut jobs, MAX_BATCH).await,
                // `recv_many` is cancel safe: nothing is lost when the deadline wins.
                Some(deadline) => {
                    match tokio::time::timeout_at(deadline, receiver.recv_many(&mut jobs, MAX_BATCH)).await {
                        Ok(taken) => taken,
                        Err(_) => {
                            self.checkpoint().await;
                            continue;
                        }
                    }
                }
            };
            if taken == 0 {
                break;
            }
            // Handed over while the writer waited: it covers this batch too.
            self.take_checkpointer();
            let mut events = Vec::with_capacity(jobs.len());
            let mut replies = Vec::with_capacity(jobs.len());
            let mut drains = Vec::new();
            for job in jobs.drain(..) {
                match job {
                    Job::Record { event, reply } => {
                        events.push(event);
                        replies.push(reply);
                    }
                    Job::Drain(reply) => drains.push(reply),
                }
            }
            // Let records gather only after a batch of records nobody waits on: not when a
            // drain (shutdown) is waiting, nor after an empty batch, nor after a full one
            // (more are queued: pausing then would cap the log at MAX_BATCH per pause).
            let gather =
                taken < MAX_BATCH && drains.is_empty() && !replies.is_empty() && replies.iter().all(Option::is_none);
            if !events.is_empty() {
                self.write(events, replies).await;
                self.checkpoint().await;
            }
            if !drains.is_empty() {
                self.final_checkpoint().await;
            }
            for drain in drains {
                let _ = drain.send(std::mem::take(&mut self.given_up));
            }
            if gather {
                tokio::time::sleep(GROUP_COMMIT_DELAY).await;
            }
        }
        self.final_checkpoint().await;
    }

    /// Reads the stored head before taking any event, and tells [`AuditLog::ready`]'s
    /// waiters. A tampered last record leaves the head unknown: every append re-reads it
    /// and fails, so the events are held (fail closed) or given up (fail open), never
    /// chained onto it.
    async fn read_head_at_start(&mut self) {
        let started = match read_head(self.sink.as_ref()).await {
            Ok(head) => {
                *self.shared.head.lock().unwrap_or_else(PoisonError::into_inner) = head.clone();
                self.head = Some(head);
                self.shared.healthy.store(true, Ordering::Release);
                Ok(())
            }
            // Whoever waits on `ready` reports it (a server refuses to serve).
            Err(error @ SinkError::TamperedLast { .. }) => Err(AuditError::Sink(Arc::new(error))),
            Err(error) => {
                tracing::error!(%error, "audit sink unavailable at start; the log starts unhealthy");
                Ok(())
            }
        };
        let _ = self.shared.started.set(started);
        self.shared.start.notify_waiters();
    }

    /// Takes on a checkpointer handed over by [`AuditLog::with_checkpoints`], from the
    /// stored head on.
    fn take_checkpointer(&mut self) {
        let offered = self.shared.checkpointer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(checkpointer) = offered {
            let head = self
                .head
                .clone()
                .unwrap_or_else(|| self.shared.head.lock().unwrap_or_else(PoisonError::into_inner).clone());
            self.checkpoints = Some(Checkpoints::new(checkpointer, head));
        }
    }

    /// Signs the stored head if a checkpoint trigger says so. Only a head the sink
    /// confirmed: none after a failed append, until the next one succeeds.
    async fn checkpoint(&mut self) {
        if let (Some(checkpoints), Some(head)) = (self.checkpoints.as_mut(), self.head.as_ref()) {
            checkpoints.tick(head).await;
        }
    }

    /// Signs the stored head if it moved since the last checkpoint (a drain, the end).
    async fn final_checkpoint(&mut self) {
        if let (Some(checkpoints), Some(head)) = (self.checkpoints.as_mut(), self.head.as_ref()) {
            checkpoints.flush(head).await;
        }
    }

    /// Seals `events` after the stored head and appends them in one sink call; answers
    /// whoever waits (`replies[i]` for `events[i]`). On failure: waiting callers get the
    /// error and their records are dropped (they withhold their results); the others are
    /// held and retried under fail-closed, dropped and logged under fail-open.
    async fn write(&mut self, mut events: Vec<AuditEvent>, mut replies: Vec<Option<Reply>>) {
        let mut delay = FIRST_RETRY_DELAY;
        // The hashes `events` were sealed with in the last failed attempt (empty: none).
        let mut sealed_as: Vec<String> = Vec::new();
        let mut conflicts = 0;
        loop {
            if !self.shared.healthy.load(Ordering::Acquire) && self.shared.giving_up() {
                self.give_up(events, "the audit sink is still unavailable at the end of the drain grace period");
                return;
            }
            let error = match self.append(&mut events, &mut replies, &mut sealed_as).await {
                Ok(first_seq) => {
                    self.shared.healthy.store(true, Ordering::Release);
                    for (seq, reply) in (first_seq..).zip(replies) {
                        if let Some(reply) = reply {
                            // The caller may have gone (request cancelled): the record stands.
                            let _ = reply.send(Ok(seq));
                        }
                    }
                    return;
                }
                // Another writer got there first; nothing of this batch was stored. Chain
                // it after that writer's records now: not an outage, nobody is refused.
                Err(SinkError::Conflict { seq }) if conflicts < MAX_CONFLICT_RETRIES => {
                    conflicts += 1;
                    tracing::debug!(seq, "another writer appended to the audit log; chaining after its records");
                    self.head = None;
                    continue;
                }
                Err(error) => Arc::new(error),
            };
            self.head = None;
            self.shared.healthy.store(false, Ordering::Release);
            let mut hashes = std::mem::take(&mut sealed_as).into_iter();
            let mut held = Vec::new();
            for (event, reply) in std::mem::take(&mut events).into_iter().zip(std::mem::take(&mut replies)) {
                let hash = hashes.next();
                match reply {
                    Some(reply) => {
                        let _ = reply.send(Err(Arc::clone(&error)));
                    }
                    None => {
                        held.push(event);
                        sealed_as.extend(hash);
                    }
                }
            }
            if held.is_empty() {
                tracing::error!(%error, "audit sink failed; records not written (their results are withheld)");
                return;
            }
            if self.policy == FailurePolicy::FailOpen {
                self.give_up(held, &format!("the audit sink failed ({error}); audit failure policy: fail open"));
                return;
            }
            tracing::error!(
                %error,
                held = held.len(),
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "audit sink failed; holding the records and retrying (new calls are refused meanwhile)"
            );
            replies = held.iter().map(|_| None).collect();
            events = held;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RETRY_DELAY);
        }
    }

    /// Writes records that will never be stored to the server log, one error line each.
    fn give_up(&mut self, events: Vec<AuditEvent>, why: &str) {
        self.given_up = self.given_up.saturating_add(events.len());
        for event in events {
            let record = serde_json::to_string(&event).unwrap_or_default();
            tracing::error!(%record, "audit record lost: {why}");
        }
    }

    /// Seals `events` after the stored head and appends them; returns the first one's seq.
    ///
    /// `sealed_as` holds the hashes of a previous failed attempt at the same events: a
    /// sink may report a failure for a batch it stored in part (a commit whose
    /// acknowledgement was lost), so the events up to the stored head's are dropped
    /// rather than chained twice. On failure, `events` are given back and `sealed_as`
    /// holds this attempt's hashes (unchanged when the head could not be read).
    async fn append(
        &mut self,
        events: &mut Vec<AuditEvent>,
        replies: &mut Vec<Option<Reply>>,
        sealed_as: &mut Vec<String>,
    ) -> Result<u64, SinkError> {
        let head = match self.head.clone() {
            Some(head) => head,
            None => read_head(self.sink.as_ref()).await?,
        };
        if let Some(stored) = sealed_as.iter().position(|hash| *hash == head.hash) {
            events.drain(..=stored);
            replies.drain(..=stored);
            sealed_as.drain(..=stored);
        }
        let first_seq = head.seq.saturating_add(1);
        let mut next = head;
        let mut records: Vec<SealedRecord> = Vec::with_capacity(events.len());
        for (i, event) in std::mem::take(events).into_iter().enumerate() {
            // A full batch takes a millisecond or more to seal: let the requests sharing
            // this thread run between slices (the writer's batches were the p99 of a
            // server on one core).
            if i > 0 && i % SEAL_SLICE == 0 {
                tokio::task::yield_now().await;
            }
            let record = SealedRecord::seal(event, next.seq.saturating_add(1), next.hash.clone());
            next = ChainHead::of(&record);
            records.push(record);
        }
        if !records.is_empty()
            && let Err(error) = self.sink.append_batch(&records).await
        {
            *sealed_as = records.iter().map(|record| record.hash.clone()).collect();
            *events = records.into_iter().map(|record| record.into_record().event).collect();
            return Err(error);
        }
        *self.shared.head.lock().unwrap_or_else(PoisonError::into_inner) = next.clone();
        self.head = Some(next);
        Ok(first_seq)
    }
}

#[cfg(test)]
mod tests;
