//! SIGTERM: stop accepting, let calls in flight finish, exit 0.

use std::time::{Duration, Instant};

use rampart_mcp::{ClientTarget, McpClient};
use serde_json::json;

use crate::support::Server;

#[tokio::test]
async fn sigterm_lets_the_call_in_flight_finish_then_exits_zero() {
    let mut server = Server::start(&["--profile", "conformance"]);
    let client = McpClient::connect(&ClientTarget::Http { url: server.url.clone(), token: None }).await.unwrap();
    let call = tokio::spawn(async move {
        let result = client.call_tool("test_sleep", json!({ "ms": 1500 }).as_object().cloned().unwrap()).await;
        client.close().await;
        result
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate(15);
        (status, server.stderr())
    });
    let result = call.await.unwrap().expect("the call in flight completes");
    assert_eq!(result["content"][0]["text"], "slept 1500 ms");
    let (status, stderr) = status.await.unwrap();
    let status = status.expect("the server exits after SIGTERM");
    assert!(status.success(), "exit 0: {status:?}\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "exits promptly once idle");
    assert!(stderr.contains("waiting for tool calls in flight"), "{stderr}");
}

#[tokio::test]
async fn sigterm_on_an_idle_server_exits_promptly() {
    let mut server = Server::start(&[]);
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
