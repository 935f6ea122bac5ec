//! [`AuditLog`]: the one writer. Callers enqueue events on a bounded queue; one task
//! seals them into the chain in arrival order, appends them to the sink and confirms each
//! to its caller.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{
        mpsc::{self, error::SendTimeoutError},
        oneshot,
    },
    task::JoinHandle,
};

use crate::{AuditEvent, AuditRecord, AuditSink, ChainHead, SinkError};

/// Most records the writer seals and appends in one sink call (one flush or transaction).
const MAX_BATCH: usize = 256;

/// What [`AuditLog::record`] does when a record cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// `record` returns the error; the caller refuses the operation. The default: an
    /// operation that cannot be audited does not happen (or its result is withheld).
    #[default]
    FailClosed,
    /// `record` logs the error (tracing, `error` level) and returns a receipt with
    /// `written() == false`; the operation goes on unaudited.
    FailOpen,
}

/// Proof that an event was handed to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditReceipt {
    seq: Option<u64>,
}

impl AuditReceipt {
    /// Whether the record is durably stored.
    pub fn written(&self) -> bool {
        self.seq.is_some()
    }

    /// The record's sequence number; `None` when it was not written (fail-open).
    pub fn seq(&self) -> Option<u64> {
        self.seq
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

/// One event waiting for the writer, and where to confirm it.
struct Job {
    event: AuditEvent,
    reply: oneshot::Sender<Result<u64, Arc<SinkError>>>,
}

/// State the writer publishes for [`AuditLog::is_healthy`] and [`AuditLog::head`].
struct Shared {
    healthy: AtomicBool,
    head: Mutex<ChainHead>,
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
    queue_timeout: Duration,
    writer: JoinHandle<()>,
    sink: Arc<dyn AuditSink>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("policy", &self.policy)
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

    /// Reads the sink's last record and starts the writer task (on the current tokio
    /// runtime) with a queue of `capacity` events.
    ///
    /// A sink that cannot be reached (a database that is down) does not stop the start:
    /// the log starts unhealthy ([`Self::is_healthy`] is false) and [`Self::probe`] or
    /// the next append reconnects.
    ///
    /// # Errors
    /// [`AuditError::ZeroCapacity`]; [`AuditError::Sink`] when the last record does not
    /// match its own hash ([`SinkError::TamperedLast`]): nothing is chained onto a record
    /// that was edited.
    pub async fn start(sink: Arc<dyn AuditSink>, capacity: usize, policy: FailurePolicy) -> Result<Self, AuditError> {
        if capacity == 0 {
            return Err(AuditError::ZeroCapacity);
        }
        let head = match read_head(sink.as_ref()).await {
            Ok(head) => Some(head),
            Err(error @ SinkError::TamperedLast { .. }) => return Err(AuditError::Sink(Arc::new(error))),
            Err(error) => {
                tracing::error!(%error, "audit sink unavailable at start; the log starts unhealthy");
                None
            }
        };
        let shared = Arc::new(Shared {
            healthy: AtomicBool::new(head.is_some()),
            head: Mutex::new(head.clone().unwrap_or_else(ChainHead::genesis)),
        });
        let (sender, receiver) = mpsc::channel(capacity);
        let writer = Writer { sink: Arc::clone(&sink), head, shared: Arc::clone(&shared) };
        let writer = tokio::spawn(writer.run(receiver));
        Ok(Self { sender, shared, policy, queue_timeout: Self::DEFAULT_QUEUE_TIMEOUT, writer, sink })
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

    /// Appends `event` to the log and waits until it is durably stored.
    ///
    /// # Errors
    /// Only under [`FailurePolicy::FailClosed`] (under `FailOpen` the error is logged and
    /// the receipt says `written() == false`): [`AuditError::QueueFull`] after waiting
    /// the queue timeout for room, [`AuditError::Sink`] when the sink failed,
    /// [`AuditError::WriterStopped`].
    pub async fn record(&self, event: AuditEvent) -> Result<AuditReceipt, AuditError> {
        match self.write(event).await {
            Ok(seq) => Ok(AuditReceipt { seq: Some(seq) }),
            Err(error) => match self.policy {
                FailurePolicy::FailClosed => Err(error),
                FailurePolicy::FailOpen => {
                    tracing::error!(%error, "audit record lost; the request goes on (audit failure policy: fail open)");
                    Ok(AuditReceipt { seq: None })
                }
            },
        }
    }

    async fn write(&self, event: AuditEvent) -> Result<u64, AuditError> {
        let (reply, confirmation) = oneshot::channel();
        match self.sender.send_timeout(Job { event, reply }, self.queue_timeout).await {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => {
                let waited_ms = u64::try_from(self.queue_timeout.as_millis()).unwrap_or(u64::MAX);
                return Err(AuditError::QueueFull { waited_ms });
            }
            Err(SendTimeoutError::Closed(_)) => return Err(AuditError::WriterStopped),
        }
        match confirmation.await {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(error)) => Err(AuditError::Sink(error)),
            Err(_) => Err(AuditError::WriterStopped),
        }
    }

    /// Whether the last append succeeded (and the writer is running). False from a sink
    /// error until an append succeeds again: check it before running an operation to
    /// refuse it up front under fail-closed. A full queue does not change it.
    pub fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Acquire) && !self.sender.is_closed()
    }

    /// Events waiting in the queue (including ones being enqueued), for a metric.
    pub fn queue_depth(&self) -> usize {
        self.sender.max_capacity().saturating_sub(self.sender.capacity())
    }

    /// The last record durably stored (seq 0 and the genesis hash when none): an anchor to
    /// keep outside the log (see [`Verifier::with_anchor`](crate::Verifier::with_anchor)).
    pub fn head(&self) -> ChainHead {
        self.shared.head.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The failure policy.
    pub fn policy(&self) -> FailurePolicy {
        self.policy
    }

    /// Stops taking events, lets the writer finish the queued ones and waits for it.
    pub async fn shutdown(self) {
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
}

impl Writer {
    async fn run(mut self, mut receiver: mpsc::Receiver<Job>) {
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        while receiver.recv_many(&mut jobs, MAX_BATCH).await > 0 {
            self.write(std::mem::take(&mut jobs)).await;
        }
    }

    /// Seals `jobs` after the stored head, appends them in one batch, and answers each.
    async fn write(&mut self, jobs: Vec<Job>) {
        let (events, replies): (Vec<_>, Vec<_>) = jobs.into_iter().map(|job| (job.event, job.reply)).unzip();
        let head = match self.head.clone() {
            Some(head) => Ok(head),
            None => read_head(self.sink.as_ref()).await,
        };
        let result = match head {
            Ok(head) => self.append(head, events).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(first_seq) => {
                self.shared.healthy.store(true, Ordering::Release);
                for (seq, reply) in (first_seq..).zip(replies) {
                    // The caller may have gone (request cancelled): the record stands.
                    let _ = reply.send(Ok(seq));
                }
            }
            Err(error) => {
                self.head = None;
                self.shared.healthy.store(false, Ordering::Release);
                tracing::error!(%error, records = replies.len(), "audit sink failed; records not written");
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(Arc::clone(&error)));
                }
            }
        }
    }

    /// Seals `events` after `head` and appends them; returns the first one's seq.
    async fn append(&mut self, head: ChainHead, events: Vec<AuditEvent>) -> Result<u64, SinkError> {
        let first_seq = head.seq.saturating_add(1);
        let mut next = head;
        let records: Vec<AuditRecord> = events
            .into_iter()
            .map(|event| {
                let record = AuditRecord::seal(event, next.seq.saturating_add(1), next.hash.clone());
                next = ChainHead::of(&record);
                record
            })
            .collect();
        self.sink.append_batch(&records).await?;
        *self.shared.head.lock().unwrap_or_else(PoisonError::into_inner) = next.clone();
        self.head = Some(next);
        Ok(first_seq)
    }
}

#[cfg(test)]
mod tests;
