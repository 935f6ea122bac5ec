//! Ending calls and servers: client cancellation stops a running tool; SIGTERM stops
//! accepting, lets calls in flight finish, and exits 0.

use std::time::{Duration, Instant};

use rampart_mcp::{ClientTarget, McpClient};
use serde_json::json;

use crate::support::{Server, mcp_post, open_session};

#[tokio::test]
async fn sigterm_lets_the_call_in_flight_finish_then_exits_zero() {
    let mut server = Server::open(&["--profile", "conformance"]);
    let client = McpClient::connect(&ClientTarget::Http { url: server.url.clone(), token: None }).await.unwrap();
    let call = tokio::spawn(async move {
        let result = client.call_tool("test_sleep", json!({ "ms": 1500 }).as_object().cloned().unwrap()).await;
        client.close().await;
        result
    });
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        // SIGTERM only once the call is running in the server.
        assert!(server.stderr_eventually_contains("test_sleep started"), "{}", server.stderr());
        let status = server.terminate(15);
        (status, server.stderr())
    });
    let result = tokio::time::timeout(Duration::from_secs(30), call).await;
    let (status, stderr) = status.await.unwrap();
    let result = result
        .unwrap_or_else(|_| panic!("the call in flight is answered before the server exits\n{stderr}"))
        .unwrap()
        .expect("the call in flight completes");
    assert_eq!(result["content"][0]["text"], "slept 1500 ms");
    let status = status.expect("the server exits after SIGTERM");
    assert!(status.success(), "exit 0: {status:?}\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "exits promptly once idle");
    assert!(stderr.contains("waiting for tool calls in flight"), "{stderr}");
}

#[tokio::test]
async fn sigterm_on_an_idle_server_exits_promptly() {
    let mut server = Server::open(&[]);
    let client = McpClient::connect(&ClientTarget::Http { url: server.url.clone(), token: None }).await.unwrap();
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate(15)).await.unwrap();
    assert!(status.expect("exits").success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an open session does not hold shutdown: {:?}",
        started.elapsed()
    );
    drop(client);
}

#[tokio::test]
async fn a_cancelled_call_stops_the_running_tool() {
    let server = Server::open(&["--profile", "conformance"]);
    let client = reqwest::Client::new();
    let session = open_session(&client, &server.url).await;
    let call = json!({ "jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": { "name": "test_sleep", "arguments": { "ms": 20000 } } });
    let request = mcp_post(&client, &server.url)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&call)
        .send();
    let pending = tokio::spawn(async move { request.await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 41, "reason": "user gave up" } });
    let response = mcp_post(&client, &server.url)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&cancel)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let cancelled_in_time = tokio::task::spawn_blocking(move || {
        let seen = server.stderr_eventually_contains("tool call cancelled");
        (seen, server.stderr())
    })
    .await
    .unwrap();
    assert!(cancelled_in_time.0, "the tool stopped long before its 20 s: {}", cancelled_in_time.1);
    pending.abort();
}

/// A tool call running as a task (tasks extension) has no client waiting on it, and a
/// `subscriptions/listen` stream never ends by itself: neither holds SIGTERM for the
/// grace period. The task ends cancelled, and its audit record says so.
#[tokio::test]
async fn sigterm_cancels_running_tasks_and_ends_listen_streams() {
    let mut server = Server::open(&["--profile", "conformance"]);
    let client = reqwest::Client::new();
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": { "extensions": { "io.modelcontextprotocol/tasks": {} } },
        "io.modelcontextprotocol/clientInfo": { "name": "e2e", "version": "0" },
    });
    let post = |body: serde_json::Value| {
        mcp_post(&client, &server.url)
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", body["method"].as_str().unwrap().to_owned())
            .json(&body)
    };
    let call = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "slow_compute", "arguments": { "seconds": 120 }, "_meta": meta } });
    let created = post(call).header("mcp-name", "slow_compute").send().await.unwrap().text().await.unwrap();
    let task = crate::support::messages("text/event-stream", &created)
        .into_iter()
        .chain(crate::support::messages("application/json", &created))
        .find_map(|m| m["result"]["taskId"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("a task: {created}"));
    let listen = json!({ "jsonrpc": "2.0", "id": 2, "method": "subscriptions/listen",
        "params": { "notifications": { "toolsListChanged": true }, "_meta": meta } });
    let mut stream = post(listen).send().await.unwrap();
    let _ack = stream.chunk().await.unwrap();

    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate(30);
        (status, server)
    });
    let rest = tokio::time::timeout(Duration::from_secs(20), async {
        let mut rest = String::new();
        while let Ok(Some(chunk)) = stream.chunk().await {
            rest.push_str(&String::from_utf8_lossy(&chunk));
        }
        rest
    })
    .await
    .expect("the listen stream ends when the server stops");
    assert!(rest.contains("\"id\":2") && rest.contains("\"result\""), "its final result: {rest}");
    let (status, server) = status.await.unwrap();
    assert!(status.expect("exits").success(), "{}", server.stderr());
    assert!(started.elapsed() < Duration::from_secs(15), "not held for the grace period: {:?}", started.elapsed());
    let (code, out, err) = server.cli(&["audit", "search", "--limit", "100", "--json"]);
    assert_eq!(code, 0, "{err}");
    let record = out
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|r| r["task"] == json!(task) && r["method"] == "tools/call")
        .unwrap_or_else(|| panic!("the task's call is recorded: {out}"));
    assert_eq!(record["outcome"], "cancelled", "{record}");
}
