//! Two replicas on one store and one Redis (`[cluster]`): a token revoked on one — over
//! MCP or with `rampart token revoke` — is refused by the other within 100 ms (without
//! the cluster, its cache would accept it for up to 2 s), a reload on one runs on both,
//! and a per-principal rate limit is counted across both. Needs `TEST_REDIS_URL`
//! (skipped loudly when unset, required under `TEST_REQUIRE_SERVICES=1`).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Server, TempDir, call_tool_status};

fn redis_url() -> Option<String> {
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        assert!(
            std::env::var("TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "TEST_REDIS_URL is required (TEST_REQUIRE_SERVICES=1)"
        );
        eprintln!("\n!!!!! SKIPPED: cluster tests: TEST_REDIS_URL is not set !!!!!\n");
        return None;
    };
    Some(url)
}

/// Two replicas of one deployment: `rampart.toml` with `[cluster]` and `extra`, one data
/// directory (one SQLite store, as a shared PostgreSQL would be), a namespace of the
/// test's own in the shared Redis.
struct Pair {
    a: Server,
    b: Server,
    config: std::path::PathBuf,
    _dir: TempDir,
}

fn pair(test: &str, extra: &str) -> Option<Pair> {
    let redis = redis_url()?;
    let dir = TempDir::new(test);
    let config = dir.0.join("rampart.toml");
    let unique = dir.0.file_name().and_then(|name| name.to_str()).unwrap_or(test).to_owned();
    let namespace = format!("rampart-e2e-{unique}");
    std::fs::write(&config, format!("[cluster]\nredis_url = \"{redis}\"\nnamespace = \"{namespace}\"\n{extra}"))
        .unwrap();
    let data = dir.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let a = Server::start_in(TempDir(data.clone()), &args, &[]);
    let b = Server::start_in(TempDir(data), &args, &[]);
    Some(Pair { a, b, config, _dir: dir })
}

impl Pair {
    fn token(&self, name: &str, role: &str) -> String {
        self.a.token(name, role, Some(&self.config))
    }
}

/// Polls `url` with `token` until it is refused (401); how long that took.
async fn refused_within(url: &str, token: &str, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if call_tool_status(url, token, "system_health", json!({})).await.0 == 401 {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

#[tokio::test]
async fn a_token_revoked_on_one_replica_is_refused_by_the_other_at_once() {
    let Some(pair) = pair("revoke", "") else { return };
    let admin = pair.token("ops", "admin");
    let (first, second) = (pair.token("bot", "reader"), pair.token("cron", "reader"));
    for token in [&first, &second] {
        // Both replicas have verified (and cache) both tokens.
        for server in [&pair.a, &pair.b] {
            assert_eq!(call_tool_status(&server.url, token, "system_health", json!({})).await.0, 200);
        }
    }

    // Revoked over MCP on replica a: b refuses it within 100 ms.
    let (status, revoked) = call_tool_status(&pair.a.url, &admin, "admin_token_revoke", json!({ "id": "bot" })).await;
    assert_eq!((status, &revoked["result"]["structuredContent"]["status"]), (200, &json!("revoked")), "{revoked}");
    let took = refused_within(&pair.b.url, &first, Duration::from_millis(100)).await;
    assert!(took.is_some(), "replica b still accepted the revoked token 100 ms later");

    // Revoked with the command line (no server involved): both refuse it at once.
    let (code, _, stderr) = pair.a.cli(&["token", "revoke", "cron", "--config", pair.config.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    for server in [&pair.a, &pair.b] {
        let took = refused_within(&server.url, &second, Duration::from_millis(100)).await;
        assert!(took.is_some(), "{} still accepted the token the CLI revoked", server.url);
    }
}

#[tokio::test]
async fn a_reload_on_one_replica_runs_on_every_replica() {
    let Some(pair) = pair("reload", "[roles.ops]\ntools = [\"system_health\"]\n") else { return };
    let admin = pair.token("root", "admin");
    let ops = pair.token("ops", "ops");
    let whoami = |url: String| {
        let ops = ops.clone();
        async move { call_tool_status(&url, &ops, "system_whoami", json!({})).await.1 }
    };
    assert_eq!(whoami(pair.b.url.clone()).await["error"]["code"], -32602, "not granted yet");
    let config = std::fs::read_to_string(&pair.config).unwrap();
    std::fs::write(&pair.config, config.replace("tools = [\"system_health\"]", "tools = [\"system_*\"]")).unwrap();
    let (status, reloaded) = call_tool_status(&pair.a.url, &admin, "admin_config_reload", json!({})).await;
    assert_eq!(status, 200, "{reloaded}");
    assert_eq!(reloaded["result"]["isError"], false, "{reloaded}");
    let started = Instant::now();
    loop {
        let answer = whoami(pair.b.url.clone()).await;
        if answer["result"]["structuredContent"]["principal"] == "token:ops" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "replica b did not reload: {answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pair.b.stderr_eventually_contains("another replica reloaded its configuration"));
}

#[tokio::test]
async fn a_principals_rate_limit_is_counted_across_replicas() {
    let Some(pair) = pair("limits", "[limits]\ncalls_per_minute = 4\n") else { return };
    let bot = pair.token("bot", "reader");
    let mut answered = 0;
    let mut limited = 0;
    for call in 0..10 {
        let server = if call % 2 == 0 { &pair.a } else { &pair.b };
        let (status, answer) = call_tool_status(&server.url, &bot, "system_health", json!({})).await;
        if status == 200 && answer["result"]["isError"] == false {
            answered += 1;
        } else {
            limited += 1;
        }
    }
    // Alone, each replica would have answered 4 of its 5 calls (8 in all).
    assert!((1..=4).contains(&answered), "answered {answered} of 10 with 4 calls a minute across replicas");
    assert!(limited >= 6, "limited {limited}");
}

#[test]
fn token_commands_work_while_redis_is_down() {
    let data = TempDir::new("redis-down");
    let dir = data.0.to_str().unwrap().to_owned();
    // Nothing listens on port 1: the command cannot reach Redis, and needs only the store.
    let env = [("RAMPART_DATA_DIR", dir.as_str()), ("RAMPART_CLUSTER_REDIS_URL", "redis://127.0.0.1:1")];
    let (code, token, stderr) =
        crate::support::run(&["token", "create", "--name", "ci", "--role", "reader"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(token.trim().starts_with("rpt_"), "{token}");
    let (code, _, stderr) = crate::support::run(&["token", "revoke", "ci"], &env, None);
    assert_eq!(code, 0, "{stderr}");
}
