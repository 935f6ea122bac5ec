//! What the replicas of one deployment share, in Redis (`[cluster] redis_url`): rate-limit
//! counters and failed-login throttling counted across replicas (GCRA, one script call per
//! check), and events every replica applies at once — a revoked or rotated token leaves
//! every replica's verification cache, a configuration reload runs everywhere, an address
//! blocked for failed logins is blocked everywhere.
//!
//! Redis being down must not take the deployment down with it: a check that cannot reach
//! Redis falls back to the replica's own limits (logged, at most once a minute), and events
//! published meanwhile are lost (a token cache entry then expires within 2 s, as without a
//! cluster). Redis is not trusted with secrets: events carry token digests (SHA-256 of
//! 256-bit secrets), never tokens.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

use crate::ServerError;

/// The GCRA check (generic cell rate algorithm, as governor uses in-process): a key holds
/// its theoretical arrival time (TAT, ms); a request is admitted when TAT - burst * period
/// is not in the future, and pushes TAT one period on. Answers `{1, 0}` (admitted) or
/// `{0, wait_ms}`. Redis's clock, so that replicas agree.
const GCRA: &str = r"
local period = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat + period - burst * period
if allow_at > now then
  return {0, allow_at - now}
end
local new_tat = tat + period
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now + 1000)
return {1, 0}
";

/// An event every replica applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A token was revoked or rotated: forget it (by the digest of its secret).
    TokenRevoked {
        /// The token's SHA-256 digest, as the store keeps it.
        digest: String,
    },
    /// The configuration was reloaded on one replica: reload here too.
    Reload,
    /// An address passed its failed-login quota: refuse it for `wait_ms`.
    AuthBlocked {
        /// The remote address.
        address: std::net::IpAddr,
        /// How long, in milliseconds.
        wait_ms: u64,
    },
}

/// One published event, with the replica it came from.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    origin: String,
    #[serde(flatten)]
    event: Event,
}

/// Whether a rate check admitted the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted.
    Admit,
    /// Refused; the wait before the next request would be admitted.
    Wait(Duration),
}

/// This replica's connection to the deployment's Redis.
pub struct Cluster {
    client: redis::Client,
    connection: ConnectionManager,
    gcra: redis::Script,
    namespace: String,
    /// This process, so that it skips its own events.
    replica: String,
    /// When the last "Redis unavailable" warning was logged (Unix seconds).
    warned: AtomicI64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("namespace", &self.namespace).field("replica", &self.replica).finish()
    }
}

/// How long one Redis command may take before the replica falls back to its own limits.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

impl Cluster {
    /// Connects to `url` (keys and channels under `namespace:`).
    ///
    /// # Errors
    /// [`ServerError::Cluster`] when the URL is invalid or Redis does not answer.
    pub async fn connect(url: &str, namespace: &str) -> Result<Arc<Self>, ServerError> {
        let shown = rampart_store::redact_url(url);
        let error = |detail: String| ServerError::Cluster(format!("Redis at {shown}: {detail}"));
        let client = redis::Client::open(url).map_err(|e| error(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(2);
        let connection = client.get_connection_manager_with_config(config).await.map_err(|e| error(e.to_string()))?;
        Ok(Arc::new(Self {
            client,
            connection,
            gcra: redis::Script::new(GCRA),
            namespace: namespace.to_owned(),
            replica: uuid::Uuid::new_v4().simple().to_string(),
            warned: AtomicI64::new(0),
        }))
    }

    /// Counts one request against `key` (under the namespace): `burst` requests, then one
    /// each `period`.
    ///
    /// # Errors
    /// The Redis error; the caller falls back to its own limits.
    pub async fn check(&self, key: &str, period: Duration, burst: u32) -> Result<Verdict, redis::RedisError> {
        let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut connection = self.connection.clone();
        let (admitted, wait_ms): (i64, i64) = self
            .gcra
            .key(format!("{}:rl:{key}", self.namespace))
            .arg(period_ms)
            .arg(burst.max(1))
            .invoke_async(&mut connection)
            .await?;
        Ok(if admitted == 1 {
            Verdict::Admit
        } else {
            Verdict::Wait(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0).max(1)))
        })
    }

    /// Logs that Redis failed (at most once a minute): limits are per replica meanwhile.
    pub fn unavailable(&self, error: &redis::RedisError) {
        let now = jiff::Timestamp::now().as_second();
        let last = self.warned.load(Ordering::Relaxed);
        if now - last >= 60 && self.warned.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            tracing::warn!(%error, "Redis unavailable: rate limits are counted per replica until it answers");
        }
    }

    /// Tells every replica (this one excluded) of `event`. A failure is logged: the event
    /// is lost, and replicas converge as they would without a cluster.
    pub async fn publish(&self, event: Event) {
        let envelope = Envelope { origin: self.replica.clone(), event };
        let Ok(payload) = serde_json::to_string(&envelope) else { return };
        let mut connection = self.connection.clone();
        let sent: Result<i64, _> =
            redis::cmd("PUBLISH").arg(self.channel()).arg(payload).query_async(&mut connection).await;
        if let Err(error) = sent {
            tracing::warn!(%error, event = ?envelope.event, "cannot tell the other replicas");
        }
    }

    fn channel(&self) -> String {
        format!("{}:events", self.namespace)
    }

    /// Runs `apply` for each event another replica publishes, until `stop`; re-subscribes
    /// (after 1 s) when the connection drops. Spawned once per server.
    pub fn listen(
        self: &Arc<Self>,
        apply: impl Fn(Event) + Send + Sync + 'static,
        stop: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let cluster = self.clone();
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = cluster.subscription(&apply) => {}
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        })
    }

    /// One subscription, until its connection ends.
    async fn subscription(&self, apply: &(impl Fn(Event) + Send + Sync)) {
        let mut pubsub = match self.client.get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(error) => return self.unavailable(&error),
        };
        if let Err(error) = pubsub.subscribe(self.channel()).await {
            return self.unavailable(&error);
        }
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else { continue };
            match serde_json::from_str::<Envelope>(&payload) {
                Ok(envelope) if envelope.origin != self.replica => apply(envelope.event),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "an event from another replica that this one cannot read"),
            }
        }
    }
}
