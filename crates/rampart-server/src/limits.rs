//! Rate limits and caps (governor): requests per minute per principal and per
//! (principal, tool), concurrent tool calls per principal, the per-call time limit, and
//! throttling of failed authentication per remote address.
//!
//! With a [`Cluster`], the rates (per principal, per tool, failed logins per address) are
//! counted in Redis across every replica, and an address blocked on one replica is
//! blocked on all; the concurrency cap stays per replica. When Redis does not answer, each
//! replica counts alone until it does.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use rampart_config::LimitsConfig;
use rampart_core::{Admission, Refusal};
use tokio::sync::Semaphore;

use crate::cluster::{Cluster, Event, Verdict};

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// One quota, `calls` per `period` (a bucket of `calls` that refills evenly over
/// `period`): the rate the cluster counts (`burst` requests, then one each `period`), and
/// the replica's own limiter for the same rate.
struct Limited<K: std::hash::Hash + Eq + Clone> {
    period: Duration,
    burst: u32,
    local: DefaultKeyedRateLimiter<K>,
}

impl<K: std::hash::Hash + Eq + Clone> Limited<K> {
    fn over(calls: u32, period: Duration) -> Option<Self> {
        let burst = NonZeroU32::new(calls)?;
        let period = period / calls;
        let local = RateLimiter::keyed(Quota::with_period(period)?.allow_burst(burst));
        Some(Self { period, burst: calls, local })
    }

    fn per_minute(calls: u32) -> Option<Self> {
        Self::over(calls, Duration::from_secs(60))
    }
}

/// Every limit, from `[limits]`.
pub struct Limits {
    per_principal: Option<Limited<String>>,
    per_tool: HashMap<String, Limited<String>>,
    cluster: Option<Arc<Cluster>>,
    concurrent: usize,
    semaphores: Mutex<HashMap<String, Arc<Semaphore>>>,
    call_timeout: Option<Duration>,
    failed_auth: Option<Limited<IpAddr>>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("concurrent", &self.concurrent)
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

impl Limits {
    /// Limits from the configuration, counted in `cluster` when there is one.
    pub fn new(config: &LimitsConfig, cluster: Option<Arc<Cluster>>) -> Self {
        Self {
            cluster,
            per_principal: Limited::per_minute(config.calls_per_minute),
            per_tool: config
                .tools
                .iter()
                .filter_map(|(tool, limit)| {
                    Limited::over(limit.calls, Duration::from_secs(limit.period_secs)).map(|l| (tool.clone(), l))
                })
                .collect(),
            concurrent: usize::try_from(config.concurrent_calls).unwrap_or(usize::MAX),
            semaphores: Mutex::new(HashMap::new()),
            call_timeout: (config.call_timeout_secs > 0).then(|| Duration::from_secs(config.call_timeout_secs)),
            failed_auth: Limited::per_minute(config.failed_auth_per_minute),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request of `principal` (for `tool`, when it is a tool call).
    ///
    /// # Errors
    /// [`Refusal::RateLimited`] with the time to wait.
    pub async fn admit(&self, principal: &str, tool: Option<&str>) -> Result<Admission, Refusal> {
        let key = principal.to_owned();
        self.count(self.per_principal.as_ref(), &key, || format!("p:{principal}")).await?;
        let Some(tool) = tool else { return Ok(Admission::default()) };
        self.count(self.per_tool.get(tool), &key, || format!("t:{tool}:{principal}")).await?;
        let permit = if self.concurrent > 0 {
            let semaphore = {
                let mut semaphores = self.semaphores.lock().unwrap_or_else(PoisonError::into_inner);
                semaphores.entry(key).or_insert_with(|| Arc::new(Semaphore::new(self.concurrent))).clone()
            };
            match semaphore.try_acquire_owned() {
                Ok(permit) => Some(Box::new(permit) as Box<dyn std::any::Any + Send + Sync>),
                Err(_) => return Err(Refusal::RateLimited { retry_after_ms: 1_000 }),
            }
        } else {
            None
        };
        Ok(Admission { permit, timeout: self.call_timeout })
    }

    /// Counts one request of `key` under `quota` (none: unlimited): in the cluster when
    /// there is one (under `cluster_key()`, made only then) and it answers, else with the
    /// replica's own limiter.
    async fn count<K: std::hash::Hash + Eq + Clone>(
        &self,
        quota: Option<&Limited<K>>,
        key: &K,
        cluster_key: impl FnOnce() -> String,
    ) -> Result<(), Refusal> {
        let Some(quota) = quota else { return Ok(()) };
        if let Some(cluster) = &self.cluster {
            match cluster.check(&cluster_key(), quota.period, quota.burst).await {
                Ok(Verdict::Admit) => return Ok(()),
                Ok(Verdict::Wait(wait)) => return Err(Refusal::RateLimited { retry_after_ms: millis(wait) }),
                Err(error) => cluster.unavailable(&error),
            }
        }
        if let Err(not_until) = quota.local.check_key(key) {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            return Err(Refusal::RateLimited { retry_after_ms: millis(wait) });
        }
        Ok(())
    }

    /// How long `address` must still wait after too many failed authentications.
    pub fn auth_blocked(&self, address: IpAddr) -> Option<Duration> {
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        match blocked.get(&address) {
            Some(until) if *until > Instant::now() => Some(*until - Instant::now()),
            Some(_) => {
                blocked.remove(&address);
                None
            }
            None => None,
        }
    }

    /// Counts a failed authentication from `address`; past the quota it is blocked until
    /// the quota refills (on every replica, in a cluster), and the wait is returned.
    pub async fn auth_failed(&self, address: IpAddr) -> Option<Duration> {
        let counted = self.count(self.failed_auth.as_ref(), &address, || format!("fa:{address}")).await;
        let Err(Refusal::RateLimited { retry_after_ms }) = counted else {
            return None;
        };
        let wait = Duration::from_millis(retry_after_ms);
        self.block(address, wait);
        if let Some(cluster) = &self.cluster {
            cluster.publish(Event::AuthBlocked { address, wait_ms: retry_after_ms }).await;
        }
        Some(wait)
    }

    /// Refuses `address` for `wait` (it failed too many logins here or on another
    /// replica).
    pub fn block(&self, address: IpAddr, wait: Duration) {
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        let until = Instant::now() + wait;
        let entry = blocked.entry(address).or_insert(until);
        *entry = (*entry).max(until);
        if blocked.len() > 100_000 {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
    }
}

#[cfg(test)]
mod tests;
