//! The legacy HTTP+SSE transport (MCP 2024-11-05) served at `/sse` + `/messages`: the seed
//! 003 client flow in plain HTTP, the official Python SDK's `sse_client`, the MCP
//! Inspector CLI, Rampart's own client, the session bound to its principal, and streams
//! that leave nothing behind.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    real_clients::{inspector, node_bin, python, python_client},
    support::{Server, run},
};

const KEY: &str = "legacy-sse-key-1";

/// An open `GET /sse` stream, read event by event.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(client: &reqwest::Client, base: &str, token: &str) -> reqwest::Result<Self> {
        let response = client.get(format!("{base}/sse")).bearer_auth(token).send().await?;
        Ok(Self { response, buffer: String::new() })
    }

    /// The next `(event, data)`, skipping keep-alive comments.
    async fn next(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = "message".to_owned();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event: ") {
                        event = name.to_owned();
                    } else if let Some(text) = line.strip_prefix("data: ") {
                        data.push(text.to_owned());
                    }
                }
                if !data.is_empty() {
                    return (event, data.join("\n"));
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("an event within 20 s")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The answer to request `id` (notifications before it are skipped).
    async fn answer(&mut self, id: u64) -> Value {
        loop {
            let (event, data) = self.next().await;
            assert_eq!(event, "message");
            let message: Value = serde_json::from_str(&data).unwrap();
            if message["id"] == id {
                return message;
            }
        }
    }
}

async fn post(client: &reqwest::Client, url: &str, token: &str, body: &Value) -> reqwest::Response {
    client.post(url).bearer_auth(token).json(body).send().await.unwrap()
}

#[tokio::test]
async fn the_seed_client_flow_in_plain_http_and_a_session_bound_to_its_principal() {
    let server = Server::start(&["--auth-key", KEY]);
    let (code, reader, _) = server.cli(&["token", "create", "--name", "other", "--role", "reader"]);
    assert_eq!(code, 0);
    let reader = reader.trim().to_owned();
    let client = reqwest::Client::new();

    // GET /sse, read `endpoint`, POST /messages/?session_id=… (the seed 003 client).
    let mut stream = EventStream::open(&client, &server.base, KEY).await.unwrap();
    assert_eq!(stream.response.status(), 200);
    assert_eq!(stream.response.headers()["content-type"], "text/event-stream");
    let (event, endpoint) = stream.next().await;
    assert_eq!(event, "endpoint");
    assert!(endpoint.starts_with("/messages?session_id="), "{endpoint}");
    let session = endpoint.rsplit('=').next().unwrap().to_owned();
    assert!(session.len() >= 32 && session.chars().all(|c| c.is_ascii_hexdigit()), "unguessable: {session}");
    // The trailing-slash form the Python SDK of that era wrote works as well.
    let messages = format!("{}/messages/?session_id={session}", server.base);
    let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": { "name": "seed-003", "version": "1" } } });
    assert_eq!(post(&client, &messages, KEY, &initialize).await.status(), 202);
    let answer = stream.answer(1).await;
    assert_eq!(answer["result"]["protocolVersion"], "2024-11-05", "{answer}");
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    assert_eq!(post(&client, &messages, KEY, &initialized).await.status(), 202);
    let call = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": { "name": "get_current_time", "arguments": { "timezone": "Asia/Tokyo" } } });
    assert_eq!(post(&client, &messages, KEY, &call).await.status(), 202);
    let answer = stream.answer(2).await;
    assert!(answer["result"]["structuredContent"]["datetime"].as_str().unwrap().ends_with("+09:00"), "{answer}");

    // Another principal naming this session: refused as unknown, and recorded.
    let list = json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/list" });
    let foreign = post(&client, &messages, &reader, &list).await;
    assert_eq!(foreign.status(), 404, "another principal's session is no session for it");
    let unknown = post(&client, &format!("{}/messages?session_id=0123456789abcdef", server.base), KEY, &list).await;
    assert_eq!(unknown.status(), 404);
    let (_, records, _) = server.cli_until(&["audit", "search", "--principal", "token:other", "--json"], |out| {
        out.contains("legacy SSE session that belongs to another principal")
    });
    let record: Value = serde_json::from_str(records.lines().last().unwrap()).unwrap();
    assert_eq!(record["method"], "session", "{record}");
    assert_eq!(record["decision"], "deny", "{record}");
    assert_eq!(record["transport"], "http_sse", "{record}");
    // The call above was audited as a legacy SSE call of the key's holder.
    let (_, records, _) =
        server.cli_until(&["audit", "search", "--tool", "get_current_time", "--json"], |out| out.contains("http_sse"));
    assert!(records.contains("\"transport\":\"http_sse\""), "{records}");

    // No credentials, wrong credentials: 401 on both routes; a bad body: a JSON-RPC error.
    assert_eq!(client.get(format!("{}/sse", server.base)).send().await.unwrap().status(), 401);
    assert_eq!(EventStream::open(&client, &server.base, "wrong").await.unwrap().response.status(), 401);
    assert_eq!(post(&client, &messages, "wrong", &list).await.status(), 401);
    let bad = client.post(&messages).bearer_auth(KEY).body("{not json").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["error"]["code"], -32700);
    // A foreign Origin is refused before anything else (DNS rebinding).
    let rebinding =
        client.get(format!("{}/sse", server.base)).bearer_auth(KEY).header("Origin", "http://evil.example.com").send();
    assert_eq!(rebinding.await.unwrap().status(), 403);
}

#[test]
fn the_python_sdk_the_inspector_and_rampart_s_client_speak_it() {
    let server = Server::start(&["--auth-key", KEY]);
    let sse = format!("{}/sse", server.base);
    if let Some(python) = python() {
        let header = format!("Authorization: Bearer {KEY}");
        let (code, result) = python_client(
            &python,
            &[
                "sse",
                &sse,
                "--header",
                &header,
                "--list-tools",
                "--call",
                "get_current_time",
                "--args",
                r#"{"timezone":"UTC"}"#,
            ],
        );
        assert_eq!(code, 0, "{result}");
        assert!(result["tools"].as_array().unwrap().contains(&Value::from("get_current_time")), "{result}");
        assert_eq!(result["call"]["structuredContent"]["timezone"], "UTC", "{result}");
        let (code, result) = python_client(&python, &["sse", &sse, "--list-tools"]);
        assert_ne!(code, 0, "no key: {result}");
        // Without a key, on a server that asks for none.
        let open = Server::open(&[]);
        let (code, result) = python_client(&python, &["sse", &format!("{}/sse", open.base), "--list-tools"]);
        assert_eq!(code, 0, "{result}");
    } else {
        crate::support::skip("Python MCP SDK client", "tests/clients/.venv is missing");
    }
    if let Some(node_bin) = node_bin() {
        let header = format!("Authorization: Bearer {KEY}");
        let (code, stdout) = inspector(
            &node_bin,
            &["--server-url", &sse, "--transport", "sse", "--header", &header, "--method", "tools/list"],
        );
        assert_eq!(code, 0, "{stdout}");
        assert!(stdout.contains("\"get_current_time\""), "{stdout}");
    } else {
        crate::support::skip("MCP Inspector CLI", "tests/clients/node_modules is missing");
    }
    // Rampart's own client, given the /sse URL, finds the legacy transport.
    let (code, stdout, stderr) = run(
        &["call", "get_current_time", "timezone=Asia/Tokyo", "--url", &sse, "--json"],
        &[("RAMPART_TOKEN", KEY)],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("+09:00"), "{stdout}");
}

/// Resident memory of a process, KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn sessions_active(client: &reqwest::Client, server: &Server) -> i64 {
    let metrics = client.get(format!("{}/metrics", server.base)).bearer_auth(KEY).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    text.lines()
        .find_map(|line| {
            line.strip_prefix("rampart_mcp_sessions_active ").or_else(|| line.strip_prefix("mcp_sessions_active "))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sessions gauge in:\n{text}"))
}

/// Opens 1,000 streams, 100 at a time, and drops them; waits until their sessions are
/// gone.
async fn a_thousand_streams(client: &reqwest::Client, server: &Server) {
    for _ in 0..10 {
        let mut batch = Vec::new();
        for _ in 0..100 {
            let mut stream = EventStream::open(client, &server.base, KEY).await.unwrap();
            let (event, _) = stream.next().await;
            assert_eq!(event, "endpoint");
            batch.push(stream);
        }
        assert!(sessions_active(client, server).await >= 100, "the streams are sessions while open");
        drop(batch);
    }
    let mut open = -1;
    for _ in 0..100 {
        open = sessions_active(client, server).await;
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open, 0, "every dropped stream's session is gone");
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_thousand_streams_opened_and_dropped_leave_nothing_behind() {
    let server = Server::start(&["--auth-key", KEY]);
    let client = reqwest::Client::new();
    let pid = server.server_pid();
    // The first thousand sets the allocator's high-water mark; a leak would keep growing
    // with each further thousand.
    a_thousand_streams(&client, &server).await;
    let first = rss_kib(pid);
    a_thousand_streams(&client, &server).await;
    a_thousand_streams(&client, &server).await;
    let third = rss_kib(pid);
    eprintln!(
        "legacy SSE, 1,000 streams opened and dropped per round: RSS {first} KiB after the first, {third} KiB after the third"
    );
    // Sessions are checked exactly above; memory only against a leak's order of size: a
    // stream that left its session behind (channels, rmcp state: tens of KiB) would grow
    // RSS by far more than 16 MiB over 2,000 streams, while the allocator's own
    // fluctuation on a busy machine is a few MiB.
    assert!(third < first + 16 * 1024, "RSS grew from {first} KiB to {third} KiB over two rounds of 1,000 streams");
}

#[tokio::test]
async fn readyz_lists_the_transports_and_each_can_be_turned_off() {
    let client = reqwest::Client::new();
    let ready = |base: String| {
        let client = client.clone();
        async move { client.get(format!("{base}/readyz")).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let server = Server::start(&["--auth-key", KEY]);
    let transports = ready(server.base.clone()).await["transports"].clone();
    assert_eq!(transports, json!(["streamable_http", "http_sse", "websocket"]));

    let server = Server::start_with_env(
        &["--auth-key", KEY],
        &[("RAMPART_LEGACY_SSE", "false"), ("RAMPART_WEBSOCKET", "false")],
    );
    assert_eq!(ready(server.base.clone()).await["transports"], json!(["streamable_http"]));
    let sse = client.get(format!("{}/sse", server.base)).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(sse.status(), 404, "no legacy SSE when turned off");
    let ws = client.get(format!("{}/ws", server.base)).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(ws.status(), 404, "no WebSocket when turned off");
}
