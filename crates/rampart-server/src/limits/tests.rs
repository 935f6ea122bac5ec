//! Limits in one process, then across "replicas" (several `Limits` on one Redis: the
//! real Redis of `TEST_REDIS_URL`, skipped loudly when unset, required under
//! `TEST_REQUIRE_SERVICES=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn config(per_minute: u32, concurrent: u32, tool_quota: Option<u32>) -> LimitsConfig {
    let mut config = LimitsConfig { calls_per_minute: per_minute, concurrent_calls: concurrent, ..Default::default() };
    if let Some(quota) = tool_quota {
        config.tools.insert("slow".into(), rampart_config::ToolLimit { calls: quota, period_secs: 60 });
    }
    config
}

fn limits(per_minute: u32, concurrent: u32, tool_quota: Option<u32>) -> Limits {
    Limits::new(&config(per_minute, concurrent, tool_quota), None)
}

#[tokio::test]
async fn per_principal_quota_then_refusal_naming_the_wait() {
    let limits = limits(3, 0, None);
    for _ in 0..3 {
        assert!(limits.admit("alice", Some("t")).await.is_ok());
    }
    let Err(Refusal::RateLimited { retry_after_ms }) = limits.admit("alice", Some("t")).await else {
        panic!("limited")
    };
    assert!((1..=20_000).contains(&retry_after_ms), "{retry_after_ms}");
    assert!(limits.admit("bob", Some("t")).await.is_ok(), "another principal is not affected");
}

#[tokio::test]
async fn per_tool_quota_only_for_that_tool() {
    let limits = limits(0, 0, Some(1));
    assert!(limits.admit("alice", Some("slow")).await.is_ok());
    assert!(limits.admit("alice", Some("slow")).await.is_err());
    assert!(limits.admit("alice", Some("fast")).await.is_ok());
}

#[tokio::test]
async fn concurrency_cap_is_released_when_the_call_ends() {
    let limits = limits(0, 2, None);
    let first = limits.admit("alice", Some("t")).await.unwrap();
    let _second = limits.admit("alice", Some("t")).await.unwrap();
    assert!(limits.admit("alice", Some("t")).await.is_err(), "third concurrent call refused");
    drop(first);
    assert!(limits.admit("alice", Some("t")).await.is_ok(), "a slot freed");
}

#[tokio::test]
async fn failed_authentication_blocks_the_address_only() {
    let limits = Limits::new(&LimitsConfig { failed_auth_per_minute: 2, ..Default::default() }, None);
    let bad: IpAddr = "127.0.0.9".parse().unwrap();
    let good: IpAddr = "127.0.0.1".parse().unwrap();
    assert!(limits.auth_failed(bad).await.is_none());
    assert!(limits.auth_failed(bad).await.is_none());
    assert!(limits.auth_blocked(bad).is_none(), "within quota");
    assert!(limits.auth_failed(bad).await.is_some(), "the failure past the quota blocks");
    assert!(limits.auth_blocked(bad).is_some(), "over quota");
    assert!(limits.auth_blocked(good).is_none());
}

/// A Redis for the test's replicas, and a namespace of the test's own.
fn redis(test: &str) -> Option<(String, String)> {
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        assert!(
            std::env::var("TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "TEST_REDIS_URL is required (TEST_REQUIRE_SERVICES=1)"
        );
        eprintln!("\n!!!!! SKIPPED: {test}: TEST_REDIS_URL is not set !!!!!\n");
        return None;
    };
    Some((url, format!("rampart-test-{}-{}-{test}", std::process::id(), uuid::Uuid::new_v4().simple())))
}

/// One replica's connection.
async fn replica(redis: &(String, String)) -> Arc<Cluster> {
    Cluster::connect(&redis.0, &redis.1).await.expect("Redis answers")
}

#[tokio::test]
async fn a_quota_holds_across_replicas() {
    let Some(redis) = redis("quota") else { return };
    // Three replicas, each with its own in-process limiter and connection, one Redis.
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Limits::new(&config(10, 0, Some(4)), Some(replica(&redis).await)));
    }
    let mut admitted = 0;
    for call in 0..30 {
        if replicas[call % 3].admit("alice", Some("t")).await.is_ok() {
            admitted += 1;
        }
    }
    // Alone, each replica would admit 10 (30 in all).
    assert_eq!(admitted, 10, "10 a minute for alice, whichever replica she reaches");
    assert!(replicas[1].admit("bob", Some("t")).await.is_ok(), "bob has his own quota");
    let mut slow = 0;
    for call in 0..9 {
        if replicas[call % 3].admit("carol", Some("slow")).await.is_ok() {
            slow += 1;
        }
    }
    assert_eq!(slow, 4, "a tool's quota too");
}

#[tokio::test]
async fn failed_logins_on_one_replica_block_the_address_on_every_replica() {
    let Some(redis) = redis("auth") else { return };
    let config = LimitsConfig { failed_auth_per_minute: 3, ..Default::default() };
    let (one, two) = (replica(&redis).await, replica(&redis).await);
    let (a, b) = (Limits::new(&config, Some(one)), Arc::new(Limits::new(&config, Some(two.clone()))));
    // Replica b applies what the others publish (the server wires this in `serve`).
    let stop = tokio_util::sync::CancellationToken::new();
    let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
    let listener = two.listen(move |event| drop(sender.send(event)), stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await; // subscribed
    let address: IpAddr = "127.0.0.7".parse().unwrap();
    let mut blocked = None;
    for attempt in 0..6 {
        // a, a, a, a: b's own failures would be published by b, which skips its own events.
        if let Some(wait) = a.auth_failed(address).await {
            blocked = Some((attempt, wait));
            break;
        }
    }
    let (attempt, wait) = blocked.expect("blocked past the quota");
    assert_eq!(attempt, 3, "the 4th failure is past 3 a minute");
    assert!(wait <= Duration::from_secs(20), "{wait:?}");
    assert!(b.auth_blocked(address).is_none(), "not yet told");
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv()).await.expect("within 2 s").unwrap();
    let Event::AuthBlocked { address: told, wait_ms } = event else { panic!("{event:?}") };
    assert_eq!(told, address);
    b.block(told, Duration::from_millis(wait_ms));
    assert!(b.auth_blocked(address).is_some(), "blocked on the other replica");
    // b's count is the cluster's: one more failure there is past the quota too.
    assert!(b.auth_failed(address).await.is_some());
    stop.cancel();
    listener.await.unwrap();
}

#[tokio::test]
async fn without_redis_each_replica_counts_alone() {
    let Some(redis) = redis("down") else { return };
    let cluster = replica(&redis).await;
    // A Redis that stops answering: a second server on a port nothing listens on cannot
    // be had after connecting, so break the key space instead: a WRONGTYPE error on the
    // rate key (a list where the script expects a string) is a Redis error like any other.
    let client = redis::Client::open(redis.0.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}:rl:p:alice", redis.1);
    let _: i64 = redis::cmd("LPUSH").arg(&key).arg("x").query_async(&mut connection).await.unwrap();
    let limits = Limits::new(&config(2, 0, None), Some(cluster));
    let admitted = [
        limits.admit("alice", None).await.is_ok(),
        limits.admit("alice", None).await.is_ok(),
        limits.admit("alice", None).await.is_ok(),
    ];
    assert_eq!(admitted, [true, true, false], "the replica's own limiter takes over");
    let _: i64 = redis::cmd("DEL").arg(&key).query_async(&mut connection).await.unwrap();
}
