//! Rate limits and caps (governor): requests per minute per principal and per
//! (principal, tool), concurrent tool calls per principal, the per-call time limit, and
//! throttling of failed authentication per remote address.

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

fn limiter<K: std::hash::Hash + Eq + Clone>(per_minute: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

/// `calls` per `period` (a bucket of `calls` that refills evenly over `period`).
fn limiter_over<K: std::hash::Hash + Eq + Clone>(calls: u32, period: Duration) -> Option<DefaultKeyedRateLimiter<K>> {
    let burst = NonZeroU32::new(calls)?;
    let quota = Quota::with_period(period / calls)?.allow_burst(burst);
    Some(RateLimiter::keyed(quota))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Every limit, from `[limits]`.
pub struct Limits {
    per_principal: Option<DefaultKeyedRateLimiter<String>>,
    per_tool: HashMap<String, DefaultKeyedRateLimiter<String>>,
    concurrent: usize,
    semaphores: Mutex<HashMap<String, Arc<Semaphore>>>,
    call_timeout: Option<Duration>,
    failed_auth: Option<DefaultKeyedRateLimiter<IpAddr>>,
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
    /// Limits from the configuration.
    pub fn new(config: &LimitsConfig) -> Self {
        Self {
            per_principal: limiter(config.calls_per_minute),
            per_tool: config
                .tools
                .iter()
                .filter_map(|(tool, limit)| {
                    limiter_over(limit.calls, Duration::from_secs(limit.period_secs)).map(|l| (tool.clone(), l))
                })
                .collect(),
            concurrent: usize::try_from(config.concurrent_calls).unwrap_or(usize::MAX),
            semaphores: Mutex::new(HashMap::new()),
            call_timeout: (config.call_timeout_secs > 0).then(|| Duration::from_secs(config.call_timeout_secs)),
            failed_auth: limiter(config.failed_auth_per_minute),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request of `principal` (for `tool`, when it is a tool call).
    ///
    /// # Errors
    /// [`Refusal::RateLimited`] with the time to wait.
    pub fn admit(&self, principal: &str, tool: Option<&str>) -> Result<Admission, Refusal> {
        let key = principal.to_owned();
        if let Some(limiter) = &self.per_principal
            && let Err(not_until) = limiter.check_key(&key)
        {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            return Err(Refusal::RateLimited { retry_after_ms: millis(wait) });
        }
        let Some(tool) = tool else { return Ok(Admission::default()) };
        if let Some(limiter) = self.per_tool.get(tool)
            && let Err(not_until) = limiter.check_key(&key)
        {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            return Err(Refusal::RateLimited { retry_after_ms: millis(wait) });
        }
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
    /// the quota refills, and the wait is returned.
    pub fn auth_failed(&self, address: IpAddr) -> Option<Duration> {
        let limiter = self.failed_auth.as_ref()?;
        if let Err(not_until) = limiter.check_key(&address) {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
            blocked.insert(address, Instant::now() + wait);
            if blocked.len() > 100_000 {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
            }
            return Some(wait);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn limits(per_minute: u32, concurrent: u32, tool_quota: Option<u32>) -> Limits {
        let mut config =
            LimitsConfig { calls_per_minute: per_minute, concurrent_calls: concurrent, ..Default::default() };
        if let Some(quota) = tool_quota {
            config.tools.insert("slow".into(), rampart_config::ToolLimit { calls: quota, period_secs: 60 });
        }
        Limits::new(&config)
    }

    #[test]
    fn per_principal_quota_then_refusal_naming_the_wait() {
        let limits = limits(3, 0, None);
        for _ in 0..3 {
            assert!(limits.admit("alice", Some("t")).is_ok());
        }
        let Err(Refusal::RateLimited { retry_after_ms }) = limits.admit("alice", Some("t")) else { panic!("limited") };
        assert!((1..=20_000).contains(&retry_after_ms), "{retry_after_ms}");
        assert!(limits.admit("bob", Some("t")).is_ok(), "another principal is not affected");
    }

    #[test]
    fn per_tool_quota_only_for_that_tool() {
        let limits = limits(0, 0, Some(1));
        assert!(limits.admit("alice", Some("slow")).is_ok());
        assert!(limits.admit("alice", Some("slow")).is_err());
        assert!(limits.admit("alice", Some("fast")).is_ok());
    }

    #[test]
    fn concurrency_cap_is_released_when_the_call_ends() {
        let limits = limits(0, 2, None);
        let first = limits.admit("alice", Some("t")).unwrap();
        let _second = limits.admit("alice", Some("t")).unwrap();
        assert!(limits.admit("alice", Some("t")).is_err(), "third concurrent call refused");
        drop(first);
        assert!(limits.admit("alice", Some("t")).is_ok(), "a slot freed");
    }

    #[test]
    fn failed_authentication_blocks_the_address_only() {
        let limits = Limits::new(&LimitsConfig { failed_auth_per_minute: 2, ..Default::default() });
        let bad: IpAddr = "127.0.0.9".parse().unwrap();
        let good: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(limits.auth_failed(bad).is_none());
        assert!(limits.auth_failed(bad).is_none());
        assert!(limits.auth_blocked(bad).is_none(), "within quota");
        assert!(limits.auth_failed(bad).is_some(), "the failure past the quota blocks");
        assert!(limits.auth_blocked(bad).is_some(), "over quota");
        assert!(limits.auth_blocked(good).is_none());
    }
}
