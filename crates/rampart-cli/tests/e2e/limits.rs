//! Issue #4: rate limits, caps, timeouts, failed-login throttling, and metrics.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Server, TempDir, initialize_body, mcp_post, post_in_session_with};

fn config_file(dir: &TempDir, text: &str) -> String {
    let path = dir.0.join("rampart.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// One MCP session with `token`; `call` sends tools/call on it.
struct Session<'a> {
    server: &'a Server,
    token: String,
    id: String,
    client: reqwest::Client,
}

impl<'a> Session<'a> {
    async fn open(server: &'a Server, token: &str) -> Self {
        let client = reqwest::Client::new();
        let init = mcp_post(&client, &server.url)
            .bearer_auth(token)
            .json(&initialize_body(1, "2025-11-25"))
            .send()
            .await
            .unwrap();
        assert_eq!(init.status(), 200);
        let id = init.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let _ = init.text().await;
        Self { server, token: token.to_owned(), id, client }
    }

    async fn call(&self, tool: &str, arguments: Value) -> Value {
        let body = json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": { "name": tool, "arguments": arguments } });
        let (_, messages) =
            post_in_session_with(&self.client, &self.server.url, &self.id, &self.token, body.to_string()).await;
        messages.into_iter().find(|m| m.get("id") == Some(&json!(9))).unwrap()["result"].clone()
    }
}

async fn metrics(url: &str, token: Option<&str>) -> String {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_tool_quota_refuses_with_a_tool_error_then_recovers() {
    let dir = TempDir::new("quota");
    let config = config_file(&dir, "[limits.tools.get_current_time]\ncalls = 2\nperiod_secs = 2\n");
    let server = Server::start(&["--config", &config]);
    let admin = server.admin_token();
    let session = Session::open(&server, &admin).await;
    for _ in 0..2 {
        assert_eq!(session.call("get_current_time", json!({ "timezone": "UTC" })).await["isError"], false);
    }
    let limited = session.call("get_current_time", json!({ "timezone": "UTC" })).await;
    assert_eq!(limited["isError"], true, "{limited}");
    assert!(limited["content"][0]["text"].as_str().unwrap().contains("rate limited: retry after"), "{limited}");
    assert_eq!(session.call("system_health", json!({})).await["isError"], false, "other tools are not limited");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(session.call("get_current_time", json!({ "timezone": "UTC" })).await["isError"], false, "recovered");

    let text = metrics(&format!("{}/metrics", server.base), Some(&admin)).await;
    assert!(metric(&text, "mcp_rate_limited_total") >= 1.0, "{text}");
    assert!(metric(&text, "mcp_tool_calls_total{tool=\"get_current_time\",status=\"rate_limited\"}") >= 1.0, "{text}");
    let (_, audit, _) = server.cli_until(&["audit", "search", "--tool", "get_current_time", "--json"], |audit| {
        audit.contains("\"rate_limited\"")
    });
    assert!(audit.contains("\"rate_limited\""), "refusals are audited: {audit}");
}

#[tokio::test]
async fn concurrency_cap_and_call_timeout() {
    let dir = TempDir::new("caps");
    let config = config_file(&dir, "[limits]\nconcurrent_calls = 1\ncall_timeout_secs = 1\n");
    let server = Server::start(&["--config", &config, "--profile", "conformance"]);
    let admin = server.admin_token();
    let first = Session::open(&server, &admin).await;
    let second = Session::open(&server, &admin).await;
    let (slow, busy) = tokio::join!(first.call("test_sleep", json!({ "ms": 3000 })), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        second.call("test_sleep", json!({ "ms": 10 })).await
    });
    assert_eq!(busy["isError"], true, "the second concurrent call is refused: {busy}");
    assert!(busy["content"][0]["text"].as_str().unwrap().contains("rate limited"), "{busy}");
    assert_eq!(slow["isError"], true, "{slow}");
    assert!(slow["content"][0]["text"].as_str().unwrap().contains("timed out after 1 s"), "{slow}");
    assert_eq!(second.call("test_sleep", json!({ "ms": 10 })).await["isError"], false, "the slot is free again");
}

#[tokio::test]
async fn a_thousand_wrong_tokens_are_throttled_and_other_addresses_are_served() {
    let server = Server::start(&[]);
    let admin = server.admin_token();
    let attacker = reqwest::Client::builder().local_address("127.0.0.1".parse().ok()).build().unwrap();
    let mut statuses = std::collections::BTreeMap::new();
    let mut retry_after = None;
    let started = std::time::Instant::now();
    for i in 0..1000 {
        let response = mcp_post(&attacker, &server.url)
            .bearer_auth(format!("rpt_wrong{i}"))
            .json(&initialize_body(1, "2025-11-25"))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        }
        *statuses.entry(response.status().as_u16()).or_insert(0) += 1;
    }
    // The default quota is 30 failures a minute: a burst of 30, then one more every 2 s
    // (a slow machine may take a few seconds for the thousand requests).
    let replenished = usize::try_from(started.elapsed().as_secs() / 2).unwrap();
    let refused = statuses.get(&401).copied().unwrap_or(0);
    assert!((30..=30 + replenished).contains(&refused), "the default quota of failures: {statuses:?}");
    assert_eq!(statuses.get(&429), Some(&(1000 - refused)), "{statuses:?}");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)), "Retry-After in seconds");

    let other = reqwest::Client::builder().local_address("127.0.0.2".parse().ok()).build().unwrap();
    let served =
        mcp_post(&other, &server.url).bearer_auth(&admin).json(&initialize_body(1, "2025-11-25")).send().await.unwrap();
    assert_eq!(served.status(), 200, "another address is served");
    server.assert_alive().await;

    // Spend any failure the quota gave back meanwhile (one every 2 s), then at once:
    let mut wrong = 0;
    while mcp_post(&attacker, &server.url).bearer_auth("rpt_wrong").send().await.unwrap().status() != 429 {
        wrong += 1;
        assert!(wrong < 10, "the address is throttled again");
    }
    let blocked = mcp_post(&attacker, &server.url)
        .bearer_auth(&admin)
        .json(&initialize_body(1, "2025-11-25"))
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 429, "the throttled address waits, even with a valid token");
    let scrape = other.get(format!("{}/metrics", server.base)).bearer_auth(&admin).send().await.unwrap();
    let text = scrape.text().await.unwrap();
    // Every refusal is counted once, as malformed (checked) or throttled (not checked):
    // the thousand, the ones spent again, and the valid token that waited.
    let malformed = metric(&text, "mcp_auth_failures_total{reason=\"malformed\"}");
    let throttled = metric(&text, "mcp_auth_failures_total{reason=\"throttled\"}");
    assert!(malformed >= 30.0 && throttled >= 900.0, "{text}");
    assert_eq!(malformed + throttled, f64::from(1000 + wrong + 2), "{text}");
}

#[tokio::test]
async fn metrics_move_after_calls_and_can_have_their_own_address() {
    let server = Server::start(&["--metrics-listen", "127.0.0.1:0"]);
    let admin = server.admin_token();
    assert!(server.stderr_eventually_contains("metrics:   http://127.0.0.1:"));
    let stderr = server.stderr();
    let url = stderr.split("metrics:   ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    let before = metrics(&url, None).await;
    let session = Session::open(&server, &admin).await;
    session.call("get_current_time", json!({ "timezone": "UTC" })).await;
    session.call("get_current_time", json!({ "timezone": "Mars/Olympus" })).await;
    let after = metrics(&url, None).await;
    let ok = "mcp_tool_calls_total{tool=\"get_current_time\",status=\"ok\"}";
    let failed = "mcp_tool_calls_total{tool=\"get_current_time\",status=\"tool_error\"}";
    assert_eq!(metric(&after, ok) - metric(&before, ok), 1.0, "{after}");
    assert_eq!(metric(&after, failed) - metric(&before, failed), 1.0, "{after}");
    assert!(metric(&after, "mcp_tool_call_duration_seconds_count{tool=\"get_current_time\"}") >= 2.0, "{after}");
    assert!(metric(&after, "mcp_sessions_active") >= 1.0, "{after}");
    assert!(after.contains("mcp_audit_queue_depth"), "{after}");
    let main = reqwest::get(format!("{}/metrics", server.base)).await.unwrap();
    assert_eq!(main.status(), 404, "not served on the main address when it has its own");
}

#[tokio::test]
async fn slow_clients_are_cut_off_by_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = TempDir::new("slowloris");
    let config = config_file(&dir, "[limits]\nheader_read_timeout_secs = 1\n");
    let server = Server::start(&["--config", &config]);
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buffer)).await;
    assert!(read.is_ok(), "the server closed the connection within the timeout");
    server.assert_alive().await;
}

/// Failed logins through `client` (connecting from 127.0.0.1) claiming to be `forwarded`,
/// until refused with 429; how many 401s came first (at most 10).
async fn wrong_until_throttled(server: &Server, client: &reqwest::Client, forwarded: &str) -> usize {
    for unauthorized in 0..10 {
        let status = mcp_post(client, &server.url)
            .bearer_auth("rpt_wrong")
            .header("x-forwarded-for", forwarded)
            .send()
            .await
            .unwrap()
            .status();
        if status == 429 {
            return unauthorized;
        }
        assert_eq!(status, 401);
    }
    10
}

#[tokio::test]
async fn behind_a_trusted_proxy_failed_logins_count_per_forwarded_client() {
    let dir = TempDir::new("proxy");
    let text = "[server]\ntrusted_proxies = [\"127.0.0.0/8\"]\n\n[limits]\nfailed_auth_per_minute = 2\n";
    let server = Server::start(&["--config", &config_file(&dir, text)]);
    let admin = server.admin_token();
    let proxy = reqwest::Client::new();
    // The proxy passes on what the client wrote (a forged first entry) and appends the
    // client's real address: only the last untrusted entry counts.
    assert_eq!(wrong_until_throttled(&server, &proxy, "203.0.113.50, 198.51.100.1").await, 2);
    assert_eq!(wrong_until_throttled(&server, &proxy, "198.51.100.1").await, 0, "that client stays throttled");
    // Another client behind the same proxy is not: its own quota.
    assert_eq!(wrong_until_throttled(&server, &proxy, "198.51.100.2").await, 2);
    let fresh = mcp_post(&proxy, &server.url)
        .bearer_auth(&admin)
        .header("x-forwarded-for", "198.51.100.3")
        .json(&initialize_body(1, "2025-11-25"))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200, "a third client behind the proxy is served");
    // The audit record names the client, not the proxy.
    let (code, audit, _) = server.cli_until(&["audit", "search", "--json"], |audit| audit.contains("198.51.100.2"));
    assert_eq!(code, 0);
    assert!(audit.contains("198.51.100.1:0") && audit.contains("198.51.100.2:0"), "{audit}");
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let dir = TempDir::new("no-proxy");
    let server = Server::start(&["--config", &config_file(&dir, "[limits]\nfailed_auth_per_minute = 2\n")]);
    let _admin = server.admin_token();
    let client = reqwest::Client::new();
    assert_eq!(wrong_until_throttled(&server, &client, "198.51.100.1").await, 2);
    // A new claimed address buys nothing: the peer, 127.0.0.1, is throttled.
    assert_eq!(wrong_until_throttled(&server, &client, "198.51.100.2").await, 0);
}
